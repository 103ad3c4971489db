"""SQS messages that outlive the twin: queues and dead letters kept in the workdir.

moto keeps every queue in memory, so a lineage event waiting in the dead-letter
queue, a Slack notice that exhausted its retries or an S3 event the start
function could not take vanished with the twin, and `threadline lineage
redrive` after a restart found nothing. The store writes every queue's
messages to `<workdir>/state/sqs.json` every `interval_s` and on stop (written
to a temporary file, then renamed), and puts them back into the queues of the
same name when the next twin starts.

What it cannot keep: a message's receive count and its visibility (a message in
flight when the twin stopped comes back visible), and anything that arrived in
the last `interval_s` before a crash.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("threadline.twin")


@dataclass
class QueueStore:
    path: Path
    account_id: str
    region: str
    interval_s: float = 2.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def restore(self) -> int:
        """Put the saved messages back into the queues that exist now; the number restored."""
        if not self.path.exists():
            return 0
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("the saved queues in %s cannot be read; starting with empty queues", self.path)
            return 0
        backend = self._backend()
        restored = 0
        for name, messages in saved.get("queues", {}).items():
            if name not in backend.queues:
                logger.warning("queue %s no longer exists: %d saved messages not restored", name, len(messages))
                continue
            for message in messages:
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
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".sqs-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"queues": queues}, handle)
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise

    def start(self) -> QueueStore:
        self._thread = threading.Thread(target=self._loop, name="queue-store", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.save()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.save()
            except Exception:  # a failed snapshot must not stop the twin; the next one may work
                logger.exception("could not save the queues to %s", self.path)

    def _backend(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account_id][self.region]
