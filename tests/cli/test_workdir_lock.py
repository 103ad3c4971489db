"""The workdir lock: one twin per workdir, the holder's pid in the refusal, stale files taken over."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from threadline.twin.workdir_lock import LOCK_FILE, WorkdirInUse, WorkdirLock, in_use_by_database


def test_a_second_holder_is_refused_with_the_first_holders_pid(tmp_path):
    with WorkdirLock(tmp_path / "twin") as first:
        assert first.path.read_text().strip() == str(os.getpid())
        with pytest.raises(WorkdirInUse) as caught:
            WorkdirLock(tmp_path / "twin").acquire()
    assert caught.value.pid == os.getpid()
    assert "in use by another threadline process (pid" in str(caught.value)
    WorkdirLock(tmp_path / "twin").acquire().release()  # free again once released


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path):
    workdir = tmp_path / "twin"
    workdir.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    (workdir / LOCK_FILE).write_text(dead.stdout)

    lock = WorkdirLock(workdir).acquire()
    try:
        assert (workdir / LOCK_FILE).read_text().strip() != dead.stdout.strip()
    finally:
        lock.release()


def test_the_graph_databases_own_lock_error_names_the_holder(tmp_path):
    error = RuntimeError(f"IO exception: Could not set lock on file : {tmp_path}/lineage.lbdb "
                         "(Lock is held by PID 4242) (Error: Resource temporarily unavailable)")

    held = in_use_by_database(error, tmp_path)

    assert held is not None and held.pid == 4242
    assert in_use_by_database(RuntimeError("something else"), tmp_path) is None
