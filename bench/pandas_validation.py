"""The same validation as the pre-processing job, written plainly with pandas.

This is the baseline a user would write first: read everything as text,
check each rule column by column, write the clean rows to Parquet and the
rejects to CSV. Line numbers assume one line per record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from preprocess.schema import Schema


def validate_with_pandas(path: Path, schema: Schema, workdir: Path) -> tuple[int, int]:
    """Returns (rows read, rows rejected); writes clean.parquet and rejects.csv in `workdir`."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [name.strip() for name in frame.columns]
    bad = pd.Series(False, index=frame.index)
    problems: list[pd.DataFrame] = []
    clean = pd.DataFrame(index=frame.index)

    def record(mask: pd.Series, column: str, rule: str) -> None:
        nonlocal bad
        if mask.any():
            problems.append(pd.DataFrame({"line": frame.index[mask] + 2, "column": column, "rule": rule,
                                          "value": frame.loc[mask, column]}))
            bad |= mask

    for column in schema.columns:
        text = frame[column.name]
        missing = text.str.strip() == ""
        if column.required:
            record(missing, column.name, "missing")
        if column.type == "number":
            number = pd.to_numeric(text, errors="coerce")
            record(~missing & number.isna(), column.name, "not_a_number")
            record(number.notna() & ~np.isfinite(number), column.name, "not_finite")
            if column.lower_bound:
                bound, inclusive = column.lower_bound
                record(number < bound if inclusive else number <= bound, column.name, "too_small")
            if column.upper_bound:
                bound, inclusive = column.upper_bound
                record(number > bound if inclusive else number >= bound, column.name, "too_large")
            clean[column.name] = number
        else:
            if column.max_length is not None:
                record(text.str.len() > column.max_length, column.name, "too_long")
            if column.allowed is not None:
                record(~missing & ~text.isin(column.allowed), column.name, "not_allowed")
            clean[column.name] = text
    if schema.unique_key:
        duplicate = ~bad & frame[~bad].duplicated(list(schema.unique_key)).reindex(frame.index, fill_value=False)
        record(duplicate, "+".join(schema.unique_key), "duplicate")
    workdir.mkdir(parents=True, exist_ok=True)
    clean[~bad].to_parquet(workdir / "clean.parquet", index=False)
    if problems:
        pd.concat(problems).sort_values("line").to_csv(workdir / "rejects.csv", index=False)
    return len(frame), int(bad.sum())
