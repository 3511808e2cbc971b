"""Stop a training run between whole steps on Ctrl-C or SIGTERM.

SIGTERM is what PBS and Slurm send when a job is deleted or reaches its walltime, shortly before
they kill it. The first signal becomes a request that the loop honours after the current step, so
the checkpoint it saves holds a whole step (never half an optimizer update); a second signal
interrupts at once. Either way the command line then exits with the shell's status for the signal,
128 + its number: 130 after SIGINT, 143 after SIGTERM (a job script resubmits on 143).
"""
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """The KeyboardInterrupt a signal raises here, carrying which signal it was."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_status(self):
        return 128 + self.signum


class DeferredInterrupt:
    """Install handlers for SIGINT and SIGTERM while the object is alive (``restore()`` puts the
    previous ones back). Python delivers signals in the main thread only, so elsewhere nothing is
    installed. ``requested`` names the signal that asked ("Ctrl-C" or "SIGTERM"), or is None;
    ``signum`` is its number."""

    NAMES = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM"}

    def __init__(self):
        self.requested, self.signum, self.previous = None, None, {}
        self.agreed = False         # True once every rank agreed to stop here (raise_if_requested)
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                number = getattr(signal, name)
                self.previous[number] = signal.signal(number, self._handler)

    def _handler(self, signum, frame):
        if self.requested:
            raise Interrupted(signum)
        self.requested = self.NAMES[signal.Signals(signum).name]
        self.signum = int(signum)

    def raise_if_requested(self, ranks):
        """Raise Interrupted when a stop was asked, on this rank or any other: every rank stops at
        the same step, or the next collective would hang. A rank that got no signal itself takes
        SIGTERM when any rank got one (the batch system's), else SIGINT."""
        if ranks.any(self.requested is not None):
            sigterm = ranks.any(self.signum == signal.SIGTERM)     # every rank makes both calls
            if self.signum is None:
                self.requested = "a signal to another rank"
                self.signum = int(signal.SIGTERM if sigterm else signal.SIGINT)
            self.agreed = True
            raise Interrupted(self.signum)

    @property
    def exit_status(self):
        """128 + the signal's number (130 SIGINT, 143 SIGTERM); 0 when none came."""
        return 128 + self.signum if self.signum else 0

    def restore(self):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
