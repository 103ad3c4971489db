"""The twin's lineage graph: an embedded ladybug database that runs the same openCypher as Neptune.

Neptune is schemaless; ladybug is not, so the node and relationship tables of
the lineage model are created here (the writes live in
`threadline_common.lineage.queries`). Every node table's primary key is `~id`,
as every node on Neptune is keyed by its `~id`. Only one process may open a
database read-write at a time; others may open it read-only. Within a process
every query goes through one connection under a lock, so threads take turns.

Batched writes that set properties, and chained writes (several batched
writes in one request), run as Neptune runs them, each request in one
transaction (`batched_writes.py`: rows in order, node MERGEs on the primary key).

The graph file is versioned (`GRAPH_FILE`): a graph written by an earlier
threadline, whose nodes were keyed by their properties, stays where it is and
is not opened as this one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ladybug

from .batched_writes import run_write, write_parts

# The graph file in a twin's workdir; an earlier schema's file keeps its own name.
GRAPH_FILE = "lineage-v2.lbdb"
EARLIER_GRAPH_FILES = ("lineage.lbdb",)  # nodes keyed by a property (run_id, ...) rather than `~id`

SCHEMA: tuple[str, ...] = (
    "CREATE NODE TABLE IF NOT EXISTS Run("
    "`~id` STRING, run_id STRING, pipeline STRING, execution_arn STRING, status STRING, started_at STRING,"
    " ended_at STRING, error STRING, cause STRING, PRIMARY KEY (`~id`))",
    "CREATE NODE TABLE IF NOT EXISTS StepAttempt("
    "`~id` STRING, attempt_id STRING, step STRING, job_key STRING, seq INT64, job_id STRING, job_name STRING,"
    " queue STRING, capacity STRING, job_definition STRING, attempt INT64, status STRING,"
    " status_reason STRING, exit_code INT64, node_count INT64, image STRING, parameters_json STRING,"
    " log_stream STRING, started_at STRING, ended_at STRING, cache_key STRING, PRIMARY KEY (`~id`))",
    "CREATE NODE TABLE IF NOT EXISTS Dataset("
    "`~id` STRING, dataset_id STRING, uri STRING, kind STRING, version STRING, etag STRING, size INT64,"
    " row_count INT64, schema STRING, schema_hash STRING, PRIMARY KEY (`~id`))",
    "CREATE REL TABLE IF NOT EXISTS PART_OF(FROM StepAttempt TO Run, FROM Dataset TO Dataset)",
    "CREATE REL TABLE IF NOT EXISTS CONSUMED(FROM Run TO Dataset, FROM StepAttempt TO Dataset)",
    "CREATE REL TABLE IF NOT EXISTS PRODUCED(FROM StepAttempt TO Dataset)",
    "CREATE REL TABLE IF NOT EXISTS RETRY_OF(FROM StepAttempt TO StepAttempt)",
    "CREATE REL TABLE IF NOT EXISTS FALLBACK_OF(FROM StepAttempt TO StepAttempt)",
    "CREATE REL TABLE IF NOT EXISTS FOLLOWED_BY(FROM StepAttempt TO StepAttempt)",
    "CREATE REL TABLE IF NOT EXISTS REUSED(FROM StepAttempt TO StepAttempt)",
    "CREATE NODE TABLE IF NOT EXISTS Container("
    "`~id` STRING, container_id STRING, node_index INT64, name STRING, essential BOOLEAN, exit_code INT64,"
    " reason STRING, log_stream STRING, image STRING, PRIMARY KEY (`~id`))",
    "CREATE REL TABLE IF NOT EXISTS RAN_CONTAINER(FROM StepAttempt TO Container)",
    # A run's and its attempts' cost (set by the lineage function at run_finished); added to older graphs too.
    "ALTER TABLE Run ADD IF NOT EXISTS cost_usd DOUBLE",
    "ALTER TABLE Run ADD IF NOT EXISTS spot_savings_usd DOUBLE",
    "ALTER TABLE Run ADD IF NOT EXISTS cost_unpriced INT64",
    "ALTER TABLE StepAttempt ADD IF NOT EXISTS cost_usd DOUBLE",
)

# Threads per query. Every query goes through one connection under a lock, and the lineage queries are
# small: a worker pool per query costs more in hand-offs than it saves, and it competes with the
# endpoint's own threads for the cores.
QUERY_THREADS = 1

# The tables SCHEMA creates. A graph written before one of them existed, opened read-only,
# answers a query naming it with no rows, as Neptune answers a label nothing has.
TABLES = frozenset(re.findall(r"TABLE IF NOT EXISTS (\w+)\(", " ".join(SCHEMA)))
_ABSENT_TABLE = re.compile(r"^Table (\w+) does not exist")

# ladybug reports errors as RuntimeError("<Kind> exception: <message>").
_ERROR_KIND = re.compile(r"^\s*(\w+) exception:\s*", re.IGNORECASE)


def graph_path(workdir: str | Path) -> Path:
    """Where a twin keeps its lineage graph in `workdir`."""
    return Path(workdir) / GRAPH_FILE


def earlier_graph(workdir: str | Path) -> Path | None:
    """A graph an earlier threadline left in `workdir` (not readable as this one), if any."""
    return next((Path(workdir) / name for name in EARLIER_GRAPH_FILES if (Path(workdir) / name).exists()), None)


class GraphSchemaError(RuntimeError):
    """The file holds a lineage graph of an earlier schema (nodes keyed by a property, not `~id`)."""


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
        self._db = ladybug.Database(str(self.path), read_only=read_only, max_num_threads=QUERY_THREADS)
        self._conn = ladybug.Connection(self._db)
        try:
            self._check_schema()
            if not read_only:
                for statement in SCHEMA:
                    self._conn.execute(statement)
        except BaseException:
            self._conn.close()
            self._db.close()
            raise

    def _check_schema(self) -> None:
        """Refuse a graph whose Run table is keyed by a property rather than `~id`."""
        tables = self._execute("CALL show_tables() RETURN name", {})
        if not any(row["name"] == "Run" for row in tables):
            return
        columns = self._execute("CALL table_info('Run') RETURN name", {})
        if not any(row["name"] == "~id" for row in columns):
            raise GraphSchemaError(
                f"{self.path} holds a lineage graph of an earlier threadline, whose nodes are keyed by their "
                f"properties rather than by `~id`; this threadline keeps its graph in {GRAPH_FILE} and cannot "
                "read that one: record the runs again (the twin writes a new graph), or move the file aside")

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one openCypher query; every row as {column: value}. Raises GraphQueryError."""
        parameters = dict(parameters or {})
        with self._lock:
            parts = write_parts(query, parameters)
            if parts is not None:
                self._in_transaction(lambda: run_write(parts, self._execute))
                return []
            try:
                results = self._conn.execute(query, parameters)
            except (RuntimeError, ValueError, TypeError) as exc:
                error = _query_error(exc)
                absent = _ABSENT_TABLE.match(error.message) if error.kind == "binder" else None
                if self.read_only and absent and absent.group(1) in TABLES:
                    return []
                raise error from exc
            results = results if isinstance(results, list) else [results]
            try:
                return self._rows(results[-1])  # several statements: the last one answers
            except (RuntimeError, ValueError, TypeError) as exc:
                raise _query_error(exc) from exc
            finally:
                for result in results:
                    result.close()

    def _in_transaction(self, work: Callable[[], None]) -> None:
        """`work` as one transaction: all of it, or (on an error) none of it."""
        self._execute("BEGIN TRANSACTION", {})
        try:
            work()
        except BaseException:
            self._execute("ROLLBACK", {})
            raise
        self._execute("COMMIT", {})

    def _execute(self, query: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One statement, its rows; the caller holds the lock. Raises GraphQueryError."""
        try:
            result = self._conn.execute(query, dict(parameters))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise _query_error(exc) from exc
        assert not isinstance(result, list), "one statement, one result"
        try:
            return self._rows(result)
        finally:
            result.close()

    @staticmethod
    def _rows(result: Any) -> list[dict[str, Any]]:
        columns = result.get_column_names()
        rows = []
        while result.has_next():
            rows.append(dict(zip(columns, result.get_next(), strict=True)))
        return rows

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
