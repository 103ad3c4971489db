"""SQS messages that outlive the twin: queues and dead letters kept in the workdir.

moto keeps every queue in memory, so a lineage event waiting in the dead-letter
queue, a Slack notice that exhausted its retries or an S3 event the start
function could not take vanished with the twin, and `threadline lineage
redrive` after a restart found nothing. The store writes every queue's
messages to `<workdir>/state/sqs.json` when `TwinState` saves (on its rhythm
and at stop), and puts them back into the queues of the same name when the
next twin starts.

What it cannot keep: a message's receive count and its visibility (a message in
flight when the twin stopped comes back visible), and anything that arrived
since the last save before a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .state_files import ChangedFile, json_bytes, read_json


class QueueStore:
    def __init__(self, path: Path, account_id: str, region: str) -> None:
        self.path = path
        self.account_id = account_id
        self.region = region
        self._file = ChangedFile(path)  # rewritten only when the messages changed

    def restore(self, problems: list[str]) -> int:
        """Put the saved messages back into the queues that exist now; the number restored."""
        saved = read_json(self.path, problems)
        queues = saved.get("queues") if isinstance(saved, dict) else None
        if not isinstance(queues, dict):
            return 0
        backend = self._backend()
        restored = 0
        for name, messages in queues.items():
            if name not in backend.queues:
                problems.append(f"queue {name} is no longer in the template: {len(messages)} saved messages "
                                "not restored")
                continue
            for message in messages:
                if not isinstance(message, dict) or not isinstance(message.get("body"), str):
                    problems.append(f"queue {name}: a saved message in {self.path} has no body; not restored")
                    continue
                backend.send_message(name, message["body"], message_attributes=message.get("attributes") or {})
                restored += 1
        return restored

    def save(self) -> None:
        backend = self._backend()
        queues: dict[str, list[dict[str, Any]]] = {}
        for name, queue in list(backend.queues.items()):
            with queue._messages_lock:
                messages = list(queue._messages)
            queues[name] = [{"body": m.body, "attributes": m.message_attributes or {}} for m in messages]
        self._file.write(json_bytes({"queues": queues}))

    def _backend(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account_id][self.region]
