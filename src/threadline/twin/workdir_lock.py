"""One twin per workdir: a lock file taken before the twin opens its lineage graph.

The twin's embedded graph database (`<workdir>/lineage-v2.lbdb`) admits one
read-write process. A second `threadline run`, `demo` or `up` on the same
workdir would otherwise fail deep inside the database with a lock error; the
lock file lets it say at once which process holds the workdir.

The lock is an advisory `flock` on `<workdir>/twin.pid`, which also holds the
owner's pid for the message. The operating system drops the lock when its
process ends, however it ends, so a file left behind by a killed process is
stale and simply taken over. Where `fcntl` is missing (Windows) the pid in
the file decides: a live pid other than ours holds the workdir.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

LOCK_FILE = "twin.pid"
_DB_LOCK_PID = re.compile(r"Lock is held by PID (\d+)")

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]


class WorkdirInUse(RuntimeError):
    """Another live process holds the workdir."""

    def __init__(self, workdir: Path, pid: int | None) -> None:
        self.workdir = workdir
        self.pid = pid
        holder = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"the workdir {workdir} is in use by another threadline process ({holder})")


class WorkdirLock:
    """Held from `acquire()` until `release()` or the end of the process."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.path = workdir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> WorkdirLock:
        """Take the workdir; raises WorkdirInUse naming the holder's pid."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise WorkdirInUse(self.workdir, _read_pid(fd)) from None
            else:  # pragma: no cover - not on POSIX
                holder = _read_pid(fd)
                if holder and holder != os.getpid() and pid_alive(holder):
                    raise WorkdirInUse(self.workdir, holder)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError:
        return False
    return True


def in_use_by_database(error: BaseException, workdir: Path) -> WorkdirInUse | None:
    """The graph database's own lock error as WorkdirInUse (a holder that took no lock file); else None."""
    text = str(error)
    if "Could not set lock on file" not in text and "Lock is held by" not in text:
        return None
    found = _DB_LOCK_PID.search(text)
    return WorkdirInUse(workdir, int(found.group(1)) if found else None)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32)
    except OSError:
        return None
    try:
        pid = int(text.decode("ascii", "replace").strip() or 0)
    except ValueError:
        return None
    return pid or None
