"""A twin's start runs no garbage collection and freezes what it leaves alive; its stop thaws it."""

from __future__ import annotations

import gc

import pytest

from threadline.twin import heap


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_the_start_collects_nothing_then_freezes_what_is_alive_and_collections_run_again() -> None:
    frozen_before = gc.get_freeze_count()
    with heap.start_without_collections():
        assert not gc.isenabled()
        kept = [Cycle() for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    heap.thaw()
    assert gc.get_freeze_count() == 0


def test_a_failed_start_freezes_nothing_and_leaves_collections_on() -> None:
    heap.thaw()
    with pytest.raises(RuntimeError), heap.start_without_collections():
        kept = [Cycle() for _ in range(1000)]
        raise RuntimeError(f"the start failed with {len(kept)} objects made")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_collections_stay_off_after_a_start_in_a_process_that_had_turned_them_off() -> None:
    gc.disable()
    try:
        with heap.start_without_collections():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        heap.thaw()


def test_a_running_twin_s_heap_is_frozen_and_its_stop_thaws_it(tmp_path) -> None:
    from threadline.twin.server import Twin, TwinConfig

    heap.thaw()
    with Twin(TwinConfig(workdir=tmp_path, warm_job_processes=False)):
        assert gc.isenabled()
        assert gc.get_freeze_count() > 100_000  # moto's and botocore's models, the provisioned resources
    assert gc.get_freeze_count() == 0
