"""The twin's state in its workdir: restored at start, saved every `interval_s` and at stop.

Holds the S3, DynamoDB, execution and SQS stores, saved one after the other
on one thread and one rhythm. A save that fails is logged and tried
again at the next tick; it never stops the twin. What arrived in the last `interval_s`
before a crash (SIGKILL, power loss) is lost; a stop saves everything.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

logger = logging.getLogger("threadline.twin")


class Store(Protocol):
    def save(self) -> None: ...


class TwinState:
    def __init__(self, stores: list[Store], interval_s: float = 1.0) -> None:
        self.stores = stores
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def save(self) -> None:
        """Save every store now (one save at a time)."""
        with self._lock:
            for store in self.stores:
                try:
                    store.save()
                except Exception:  # one store failing must not keep the others from saving
                    logger.exception("could not save the twin's state (%s)", type(store).__name__)

    def start(self) -> TwinState:
        self._thread = threading.Thread(target=self._loop, name="twin-state", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.save()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.save()
