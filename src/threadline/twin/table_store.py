"""DynamoDB items that outlive the twin: every table's items in `<workdir>/state/dynamodb.json`.

The run table is how the pipeline and people see a run's record; without this
a restart forgot every earlier run. Items are kept in DynamoDB's own typed
JSON (`{"S": ...}`, binary values as base64) and written back with
BatchWriteItem into the tables of the same name when the next twin starts.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from .state_files import ChangedFile, json_bytes, read_json

_BINARY = ("B", "BS")


class TableStore:
    def __init__(self, path: Path, dynamodb: Any, account_id: str, region: str) -> None:
        self.path = path
        self.dynamodb = dynamodb  # a boto3 DynamoDB client of the twin
        self.account_id = account_id
        self.region = region
        self._file = ChangedFile(path)

    def restore(self, problems: list[str]) -> int:
        """Put the saved items back into the tables that exist now; the number restored."""
        saved = read_json(self.path, problems)
        if not isinstance(saved, dict):
            return 0
        from botocore.exceptions import BotoCoreError, ClientError

        existing = set(self._tables())
        tables = saved.get("tables")
        restored = 0
        for table, items in (tables.items() if isinstance(tables, dict) else ()):
            if table not in existing:
                problems.append(f"table {table} is no longer in the template: {len(items)} saved items not restored")
                continue
            try:
                for start in range(0, len(items), 25):  # BatchWriteItem's limit
                    batch = [{"PutRequest": {"Item": _decode(item)}} for item in items[start:start + 25]]
                    pending: dict[str, Any] = {table: batch}
                    while pending:
                        pending = self.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                    restored += len(batch)
            except (BotoCoreError, ClientError, TypeError, ValueError) as exc:  # an item edited into nonsense
                problems.append(f"table {table}: saved items from {self.path} not all restored "
                                f"({type(exc).__name__}: {exc})")
        return restored

    def save(self) -> None:
        """Every table's items, in the typed JSON a Scan answers, read from moto's tables in this process.

        The twin saves every second; a Scan of every table through botocore and moto's
        serialiser was most of that save's cost (about a tenth of the twin's CPU during
        a run). moto's Scan answers each item's attributes with this encoder; the file
        is rewritten only when its text changed.
        """
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.utilities import DynamoJsonEncoder

        backend = dynamodb_backends[self.account_id][self.region]
        tables = {name: [item.attrs for item in table.all_items()] for name, table in list(backend.tables.items())}
        self._file.write(json_bytes({"tables": tables}, DynamoJsonEncoder))

    def _tables(self) -> list[str]:
        names: list[str] = []
        for page in self.dynamodb.get_paginator("list_tables").paginate():
            names.extend(page["TableNames"])
        return names


def saved_item(path: Path, key: str, value: str) -> dict[str, Any] | None:
    """The first saved item, in any table, whose attribute `key` is the string `value`, as plain Python."""
    from boto3.dynamodb.types import TypeDeserializer

    saved = read_json(path)
    tables = saved.get("tables") if isinstance(saved, dict) else None
    deserializer = TypeDeserializer()
    for items in (tables.values() if isinstance(tables, dict) else ()):
        for item in items:
            if isinstance(item, dict) and item.get(key) == {"S": value}:
                return {name: deserializer.deserialize(typed) for name, typed in _decode(item).items()}
    return None


def saved_items(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every saved item of every table, as plain Python (numbers as Decimal), by table name."""
    from boto3.dynamodb.types import TypeDeserializer

    saved = read_json(path)
    tables = saved.get("tables") if isinstance(saved, dict) else None
    deserializer = TypeDeserializer()
    return {str(table): [{name: deserializer.deserialize(typed) for name, typed in _decode(item).items()}
                         for item in items if isinstance(item, dict)]
            for table, items in (tables.items() if isinstance(tables, dict) else ()) if isinstance(items, list)}


def _decode(value: Any, binary: bool = False) -> Any:
    if binary and isinstance(value, str):
        return base64.b64decode(value)
    if isinstance(value, dict):
        return {key: _decode(inner, key in _BINARY) for key, inner in value.items()}
    if isinstance(value, list):
        return [_decode(inner, binary) for inner in value]
    return value
