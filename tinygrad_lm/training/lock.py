"""One run per output folder: the folder proven writable before step 0, and `out_dir/.lock`
holding the running process's PID and host."""
import json
import os
import pathlib
import socket
import tempfile

from ..errors import CheckpointError


def prepare_out_dir(folder):
    """Create the output folder and prove it can be written (a run that cannot save is lost; a
    read-only folder would otherwise be found only at the first checkpoint)."""
    folder = pathlib.Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot create the output folder {folder} ({e})") from e
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write_test.")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise CheckpointError(f"the output folder {folder} cannot be written ({e})") from e


_HELD = set()          # the lock files this process holds (a lock with our own PID not in here is stale)


class OutDirLock:
    """out_dir/.lock, holding the owner's PID and host: made atomically (O_CREAT | O_EXCL), so of two
    runs started into one folder only one gets it; removed when the run ends, also on an error or a
    signal. A lock left by a process that died on this host is recognised and taken over, with a
    note; one from another host (a shared file system) cannot be checked: the message says so."""

    NAME = ".lock"

    def __init__(self, folder, log=print):
        self.path, self.log, self.held = pathlib.Path(folder) / self.NAME, log, False

    def acquire(self):
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                owner = self.owner()
                if owner is None or not self._stale(owner, me):
                    raise CheckpointError(self._in_use(owner)) from None
                self.log(f"note: {self.path} was left by process {owner['pid']} on {owner['host']}, which is no "
                         "longer running: taking the folder over")
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            except OSError as e:
                raise CheckpointError(f"cannot create the lock {self.path} ({e})") from e
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
            except OSError as e:        # an empty lock would refuse every later run: take it back
                self.path.unlink(missing_ok=True)
                raise CheckpointError(f"cannot write the lock {self.path} ({e})") from e
            self.held = True
            _HELD.add(str(self.path.resolve()))
            return self
        raise CheckpointError(self._in_use(self.owner()))

    def owner(self):
        """{'pid', 'host'} from the lock file, or None when it cannot be read as one."""
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (isinstance(owner, dict) and isinstance(owner.get("pid"), int) and owner["pid"] > 0
                and isinstance(owner.get("host"), str)):
            return None
        return owner

    def _stale(self, owner, me):
        if owner["host"] != me["host"]:
            return False
        if owner["pid"] == me["pid"]:
            return str(self.path.resolve()) not in _HELD
        try:
            os.kill(owner["pid"], 0)                 # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except OSError:                              # exists, owned by another user
            return False
        return False

    def _in_use(self, owner):
        who = (f"process {owner['pid']} on {owner['host']}" if owner else "a run whose lock cannot be read")
        return (f"the output folder {self.path.parent} is in use by {who} ({self.path}): two runs into one folder "
                "would overwrite each other's checkpoints. Choose another --out-dir, or delete the lock if no "
                "run uses the folder any more")

    def release(self):
        if self.held:
            self.held = False
            _HELD.discard(str(self.path.resolve()))
            try:
                self.path.unlink()
            except OSError:
                pass
