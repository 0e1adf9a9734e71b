"""One trainer per run folder: an operating-system lock on ``<run folder>/.lock``.

The lock is ``fcntl.flock`` on an open file, so the kernel releases it when the process ends,
however it ends (SIGKILL included); the file stays (removing it would let two processes lock two
different files of one name) and, stale, locks nothing. The holder writes its process id into it
so that a refused trainer can name it. Readers (``bptt sample``) never take the lock: they read
the last complete checkpoint, which is only ever replaced atomically.

A trainer takes the lock in two moves, so that a command refused for any other reason changes
nothing in the folder: ``acquire`` locks the file if it is there (refusing at once if another
process holds it), then ``hold``, just before the first write, creates the folder and the file if
needed, locks it if not yet locked, and writes the pid.
"""

import errno
import fcntl
import os

from .config import RunError

LOCK = ".lock"


class RunLockError(RunError):
    """The run folder is held by another training process, or the lock file cannot be made."""


class RunLock:
    """The lock of the run folder ``folder``; released by ``release`` or when the process ends."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK)
        self.fd: int | None = None
        self.seen: list = []      # the caller's record of the folder when it started

    def acquire(self) -> "RunLock":
        """Lock the lock file if it exists, without creating or writing anything; RunLockError
        naming the folder and the holder's pid if another process holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return self                   # no trainer ever ran here: ``hold`` creates it
        except OSError:
            return self                   # e.g. read-only: ``hold`` says what is wrong
        self._lock(fd)
        return self

    def hold(self) -> None:
        """Make sure the lock is held (creating the folder and lock file if needed) and write this
        process's id into it. RunLockError if another process holds it or it cannot be made."""
        if self.fd is None:
            try:
                os.makedirs(self.folder, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise RunLockError(f"--out {self.folder}: cannot create its lock file "
                                   f"{self.path} ({err.strerror or err}); is the folder "
                                   "writable?") from None
            self._lock(fd)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read_pid(fd)
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"process {holder}" if holder else "another process"
                raise RunLockError(f"--out {self.folder}: in use by {who}, which is training "
                                   "it; wait for it to end, or choose another --out") from None
            raise RunLockError(f"--out {self.folder}: cannot lock {self.path} "
                               f"({err.strerror or err})") from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)             # closing the last descriptor releases the flock
            self.fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
