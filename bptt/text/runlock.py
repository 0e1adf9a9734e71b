"""One trainer per run folder: an operating-system lock on ``<run folder>/.lock``.

The lock is ``fcntl.flock`` on an open file, so the kernel releases it when the process ends,
however it ends (SIGKILL included); a stale file left behind locks nothing. The holder writes its
process id into the file so that a refused trainer can name it. Readers (``bptt sample``) never
take the lock: they read the last complete checkpoint, which is only ever replaced atomically.
"""

import errno
import fcntl
import os

from .config import RunError

LOCK = ".lock"


class RunLockError(RunError):
    """The run folder is held by another training process, or the lock file cannot be made."""


class RunLock:
    """The lock of ``folder``, taken by ``acquire`` (creating the folder if needed) and given back
    by ``release`` (or when the process ends)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK)
        self.fd: int | None = None
        self.made_folder = False

    def acquire(self) -> "RunLock":
        """Take the lock without waiting; RunLockError naming the folder and the holder's pid if
        another process holds it, or the path if the lock file cannot be created."""
        if not os.path.isdir(self.folder):
            try:
                os.makedirs(self.folder)
                self.made_folder = True
            except FileExistsError:
                pass
            except OSError as err:
                raise RunLockError(f"--out {self.folder}: cannot create the run folder "
                                   f"({err.strerror or err})") from None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunLockError(f"--out {self.folder}: cannot create its lock file {self.path} "
                               f"({err.strerror or err}); is the folder writable?") from None
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self, remove_folder: bool = False) -> None:
        """Give the lock back; with ``remove_folder``, also remove the lock file and the folder if
        ``acquire`` created it and nothing else was put in it (a run whose setup failed)."""
        if self.fd is None:
            return
        if remove_folder and self.made_folder and os.listdir(self.folder) == [LOCK]:
            os.unlink(self.path)
            os.rmdir(self.folder)
        os.close(self.fd)             # closing the last descriptor releases the flock
        self.fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
