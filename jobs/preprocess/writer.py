"""A Parquet writer that runs in a thread of its own.

DuckDB only works on the query while it is being fetched from; writing the
clean rows in another thread lets fetching (parallel, in DuckDB) and
encoding Parquet (in Arrow, which releases the GIL) overlap.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

Transform = Callable[[pa.RecordBatch], pa.RecordBatch]
_DONE = None


class BackgroundParquetWriter:
    """Write batches (after `transform`) to `path`; a failure in the thread re-raises on the caller's side."""

    def __init__(self, path: Path, schema: pa.Schema, transform: Transform, depth: int = 3) -> None:
        self._writer = pq.ParquetWriter(path, schema, compression="snappy")
        self._transform = transform
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not _DONE:
            if self._error is None:
                try:
                    self._writer.write_batch(self._transform(batch))
                except BaseException as exc:  # handed to the caller in write()/close()
                    self._error = exc

    def write(self, batch: pa.RecordBatch) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundParquetWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
