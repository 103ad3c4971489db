"""The twin's lineage graph: an embedded ladybug database that runs the same openCypher as Neptune.

Neptune is schemaless; ladybug is not, so the node and relationship tables of
the lineage model are created here (the writes live in
`threadline_common.lineage.queries`). Only one process may open a database
read-write at a time; others may open it read-only. Within a process every
query goes through one connection under a lock, so threads take turns.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ladybug

SCHEMA: tuple[str, ...] = (
    "CREATE NODE TABLE IF NOT EXISTS Pipeline(name STRING, PRIMARY KEY (name))",
    "CREATE NODE TABLE IF NOT EXISTS Run("
    "run_id STRING, execution_arn STRING, status STRING, started_at STRING, ended_at STRING,"
    " error STRING, cause STRING, PRIMARY KEY (run_id))",
    "CREATE NODE TABLE IF NOT EXISTS StepAttempt("
    "attempt_id STRING, step STRING, job_key STRING, seq INT64, job_id STRING, job_name STRING,"
    " queue STRING, capacity STRING, job_definition STRING, attempt INT64, status STRING,"
    " status_reason STRING, exit_code INT64, node_count INT64, image STRING, parameters_json STRING,"
    " log_stream STRING, started_at STRING, ended_at STRING, cache_key STRING, PRIMARY KEY (attempt_id))",
    "CREATE NODE TABLE IF NOT EXISTS Dataset("
    "dataset_id STRING, uri STRING, kind STRING, version STRING, etag STRING, size INT64,"
    " row_count INT64, schema STRING, schema_hash STRING, PRIMARY KEY (dataset_id))",
    "CREATE REL TABLE IF NOT EXISTS PART_OF("
    "FROM Run TO Pipeline, FROM StepAttempt TO Run, FROM Dataset TO Dataset)",
    "CREATE REL TABLE IF NOT EXISTS CONSUMED(FROM Run TO Dataset, FROM StepAttempt TO Dataset)",
    "CREATE REL TABLE IF NOT EXISTS PRODUCED(FROM StepAttempt TO Dataset)",
    "CREATE REL TABLE IF NOT EXISTS RETRY_OF(FROM StepAttempt TO StepAttempt)",
    "CREATE REL TABLE IF NOT EXISTS FALLBACK_OF(FROM StepAttempt TO StepAttempt)",
    "CREATE REL TABLE IF NOT EXISTS FOLLOWED_BY(FROM StepAttempt TO StepAttempt)",
    "CREATE REL TABLE IF NOT EXISTS REUSED(FROM StepAttempt TO StepAttempt)",
    # Properties added since the first schema: a graph written by an older threadline gains them.
    "ALTER TABLE StepAttempt ADD IF NOT EXISTS cache_key STRING",
    "ALTER TABLE Dataset ADD IF NOT EXISTS row_count INT64",
    "ALTER TABLE Dataset ADD IF NOT EXISTS schema STRING",
    "ALTER TABLE Dataset ADD IF NOT EXISTS schema_hash STRING",
)

# ladybug reports errors as RuntimeError("<Kind> exception: <message>").
_ERROR_KIND = re.compile(r"^\s*(\w+) exception:\s*", re.IGNORECASE)


class GraphQueryError(Exception):
    """A query the graph refused. `kind` is ladybug's error class: parser, binder, catalog, runtime, ..."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind} error: {message}")
        self.kind = kind
        self.message = message


class GraphStore:
    """An opened lineage graph. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(f"no lineage graph at {self.path}")
        self._lock = threading.Lock()
        self._db = ladybug.Database(str(self.path), read_only=read_only)
        self._conn = ladybug.Connection(self._db)
        if not read_only:
            for statement in SCHEMA:
                self._conn.execute(statement)

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one openCypher query; every row as {column: value}. Raises GraphQueryError."""
        with self._lock:
            try:
                results = self._conn.execute(query, dict(parameters or {}))
            except (RuntimeError, ValueError, TypeError) as exc:
                raise _query_error(exc) from exc
            results = results if isinstance(results, list) else [results]
            try:
                answer = results[-1]  # several statements: the last one answers
                columns = answer.get_column_names()
                rows = []
                while answer.has_next():
                    rows.append(dict(zip(columns, answer.get_next(), strict=True)))
                return rows
            except (RuntimeError, ValueError, TypeError) as exc:
                raise _query_error(exc) from exc
            finally:
                for result in results:
                    result.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._db.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _query_error(exc: Exception) -> GraphQueryError:
    text = str(exc).strip()
    match = _ERROR_KIND.match(text)
    if match:
        return GraphQueryError(match.group(1).lower(), text[match.end():])
    return GraphQueryError("parameter" if isinstance(exc, (ValueError, TypeError)) else "runtime", text)
