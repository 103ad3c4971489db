"""Dead letters outlive the twin: a restart in the same workdir finds them, and a redrive works."""

from __future__ import annotations

import json
from pathlib import Path

from threadline.lineage.redrive import redrive
from threadline.twin.server import Twin, TwinConfig


def _messages(twin: Twin, queue: str) -> list[str]:
    sqs = twin.client("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=twin.physical_id(queue), MaxNumberOfMessages=10,
                                  VisibilityTimeout=60).get("Messages", [])
        if not got:
            return sorted(bodies)
        bodies.extend(m["Body"] for m in got)


def test_dead_letters_survive_a_restart_of_the_twin(tmp_path: Path) -> None:
    lineage_event = json.dumps({"event": "run_started", "run_id": "kept-1", "source": {"uri": "s3://b/k.csv"}})
    notice = json.dumps({"notice": "run_failed", "run_id": "kept-1"})
    with Twin(TwinConfig(workdir=tmp_path)) as first:
        sqs = first.client("sqs")
        sqs.send_message(QueueUrl=first.physical_id("LineageDeadLetterQueue"), MessageBody=lineage_event)
        sqs.send_message(QueueUrl=first.physical_id("NotifySlackDeadLetterQueue"), MessageBody=notice,
                         MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": "Slack 502"}})
        assert first.restored_messages == 0
    assert (tmp_path / "state" / "sqs.json").exists()

    with Twin(TwinConfig(workdir=tmp_path)) as second:
        assert second.restored_messages == 2
        assert _messages(second, "NotifySlackDeadLetterQueue") == [notice]
        moved = redrive(second.client("sqs"), stack=second.config.stack_name)  # `threadline lineage redrive`
        assert moved.messages == 1


def test_an_unreadable_store_starts_empty_queues(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "sqs.json").write_text("{not json", encoding="utf-8")
    with Twin(TwinConfig(workdir=tmp_path)) as twin:
        assert twin.restored_messages == 0
