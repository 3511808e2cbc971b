"""Stop a training run between whole steps on Ctrl-C or SIGTERM.

SIGTERM is what PBS and Slurm send when a job is deleted or reaches its walltime, shortly before
they kill it. The first signal becomes a request that the loop honours after the current step, so
the checkpoint it saves holds a whole step (never half an optimizer update); a second signal
interrupts at once.
"""
import signal
import threading


class DeferredInterrupt:
    """Install handlers for SIGINT and SIGTERM while the object is alive (``restore()`` puts the
    previous ones back). Python delivers signals in the main thread only, so elsewhere nothing is
    installed. ``requested`` names the signal that asked ("Ctrl-C" or "SIGTERM"), or is None."""

    NAMES = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}

    def __init__(self):
        self.requested, self.previous = None, {}
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, self._handler)

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = self.NAMES[signal.Signals(signum).name]

    def raise_if_requested(self, ranks):
        """Raise KeyboardInterrupt when a stop was asked, on this rank or any other: every rank
        stops at the same step, or the next collective would hang."""
        if ranks.any(self.requested is not None):
            self.requested = self.requested or "a signal to another rank"
            raise KeyboardInterrupt

    def restore(self):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
