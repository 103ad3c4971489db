"""State files: written whole or not at all; an unreadable one is set aside and said, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.twin.execution_store import saved_runs
from threadline.twin.queue_store import QueueStore
from threadline.twin.s3_store import S3Store
from threadline.twin.server import ACCOUNT_ID, REGION
from threadline.twin.state_files import read_json, write_json
from threadline.twin.table_store import TableStore


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "thing.json"
    write_json(path, {"kept": 1})

    with pytest.raises(TypeError):
        write_json(path, {"not json": object()})

    assert read_json(path) == {"kept": 1}
    assert [p.name for p in path.parent.iterdir()] == ["thing.json"]


def test_unreadable_stores_are_set_aside_and_said(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "executions").mkdir(parents=True)
    (state / "s3.json").write_text("{truncated", encoding="utf-8")
    (state / "dynamodb.json").write_bytes(b"\xff\xfe not text")
    (state / "executions" / "run-1.json").write_text("[", encoding="utf-8")
    (state / "sqs.json").write_text('{"queues": {"LineageQueue": [', encoding="utf-8")
    problems: list[str] = []

    assert S3Store(tmp_path, ACCOUNT_ID).restore(problems) == 0
    assert TableStore(state / "dynamodb.json", None, ACCOUNT_ID, REGION).restore(problems) == 0
    assert saved_runs(tmp_path, problems) == []
    assert QueueStore(state / "sqs.json", ACCOUNT_ID, REGION).restore(problems) == 0

    assert len(problems) == 4 and all("cannot be read" in problem and "moved to" in problem for problem in problems)
    left = sorted(p.name.split(".corrupt-")[0] for p in state.rglob("*.corrupt-*"))
    assert left == ["dynamodb.json", "run-1.json", "s3.json", "sqs.json"]
    assert not (state / "s3.json").exists() and not (state / "sqs.json").exists()
