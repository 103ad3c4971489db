"""Dead letters outlive the twin: a restart in the same workdir finds them, and a redrive works.

Each twin runs in a process of its own, as `threadline up` does: moto's state is per
process, and the test process may already hold another test's twin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FIRST_TWIN = """
import json, sys, threading, time
from pathlib import Path
from threadline.twin.server import Twin, TwinConfig

def saved_bodies(path):
    try:
        return sorted(m["body"] for ms in json.loads(path.read_text())["queues"].values() for m in ms)
    except (OSError, ValueError):
        return []

with Twin(TwinConfig(workdir=Path(sys.argv[1]))) as twin:
    sqs = twin.client("sqs")
    sqs.send_message(QueueUrl=twin.physical_id("LineageDeadLetterQueue"), MessageBody=sys.argv[2])
    sqs.send_message(QueueUrl=twin.physical_id("NotifySlackDeadLetterQueue"), MessageBody=sys.argv[3],
                     MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": "Slack 502"}})
    # Saved on the twin's one rhythm while it runs, not only at stop.
    deadline = time.monotonic() + 60
    while saved_bodies(twin.workdir / "state" / "sqs.json") != sorted(sys.argv[2:4]) and time.monotonic() < deadline:
        time.sleep(0.1)
    print(json.dumps({"restored": twin.restored["messages"],
                      "saved_while_running": saved_bodies(twin.workdir / "state" / "sqs.json"),
                      "savers": sorted(t.name for t in threading.enumerate()
                                       if t.name.endswith(("-store", "-state")))}))
"""

SECOND_TWIN = """
import json, sys
from pathlib import Path
from threadline.lineage.redrive import redrive
from threadline.twin.server import Twin, TwinConfig

with Twin(TwinConfig(workdir=Path(sys.argv[1]))) as twin:
    sqs = twin.client("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=twin.physical_id("NotifySlackDeadLetterQueue"),
                                  MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not got:
            break
        bodies.extend(m["Body"] for m in got)
    moved = redrive(sqs, stack=twin.config.stack_name)  # what `threadline lineage redrive` does
    print(json.dumps({"restored": twin.restored["messages"], "slack_dead_letters": bodies,
                      "redriven": moved.messages}))
"""


def _twin(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dead_letters_survive_a_restart_of_the_twin(tmp_path: Path) -> None:
    lineage_event = json.dumps({"event": "run_started", "run_id": "kept-1", "source": {"uri": "s3://b/k.csv"}})
    notice = json.dumps({"notice": "run_failed", "run_id": "kept-1"})

    first = _twin(FIRST_TWIN, str(tmp_path), lineage_event, notice)
    assert first == {"restored": 0, "saved_while_running": sorted([lineage_event, notice]),
                     "savers": ["twin-state"]}
    assert (tmp_path / "state" / "sqs.json").exists()

    second = _twin(SECOND_TWIN, str(tmp_path))
    assert second == {"restored": 2, "slack_dead_letters": [notice], "redriven": 1}
