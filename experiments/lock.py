"""Exclusive locks on run and sweep directories (one process at a time may write a run).

A lock is ``fcntl.flock`` on ``<folder>/.lock``, a file that holds the owner's PID. The kernel
drops the lock when the owner exits in any way (SIGKILL included), so a stale lock file never
blocks a later ``--resume``; a second process that tries while the owner lives gets
:class:`DirectoryInUseError` naming the owner's PID::

    with DirectoryLock(run_dir, "run"):
        ...  # write results.h5, checkpoints

Linux and macOS only (``fcntl``); the lock is advisory (it guards neurosim against itself).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from neurosim.backend import InputError

LOCK_FILE = ".lock"
#: How long :meth:`DirectoryLock.acquire` waits for a lock whose owner is already exiting: a
#: killed multi-threaded process shows as a zombie while its other threads still tear down, and
#: the kernel drops its ``flock`` only when the last of them is gone.
EXITING_OWNER_GRACE_S = 10.0


class DirectoryInUseError(InputError):
    """Another live process holds the lock of a run or sweep directory."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class DirectoryLock:
    """``flock`` on ``<folder>/.lock`` (see the module docstring).

    Args:
        folder: the run or sweep directory (must exist).
        what: the word used in the error message (``run``, ``sweep``).
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "run") -> None:
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DirectoryInUseError`.

        Waits only while the owner is already exiting (up to ``EXITING_OWNER_GRACE_S``); a live
        owner is reported at once.
        """
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(
                f"cannot lock {self.what} directory {str(self.folder)!r}: {exc.strerror}"
            ) from exc
        deadline = time.monotonic() + EXITING_OWNER_GRACE_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = _read_pid(fd)
                if pid is not None and _exiting(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
            os.close(fd)
            owner = f"PID {pid}" if pid is not None else "another process"
            raise DirectoryInUseError(
                f"{self.what} {str(self.folder)!r} is in use by {owner}; wait for it to end "
                "(or stop it) before resuming",
                pid,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a waiting process)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_holder(folder: str | os.PathLike[str]) -> int | None:
    """PID of the live process holding ``folder``'s lock, or ``None`` when nobody holds it.

    Read-only: it never creates a lock file (a status ``running`` with no holder means the
    process died and the run waits for ``--resume``).
    """
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        return pid if pid is not None else -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _exiting(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (its lock is about to be dropped by the kernel)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return not _alive(pid)
    return state in ("Z", "X")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
