"""Run one checker and record how it ended: `python record_check.py RESULT.json TIMEOUT_S -- COMMAND...`.

The result (`returncode`, `stdout`, `stderr`; `returncode` null when the command ran past
TIMEOUT_S) appears at RESULT.json all at once, by a rename, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def record(result_path: Path, timeout_s: float, command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        answer = {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    except subprocess.TimeoutExpired as exc:
        answer = {"returncode": None, "stdout": _text(exc.stdout),
                  "stderr": f"{_text(exc.stderr)}\n{command[0]} ran past {timeout_s:g} s and was killed"}
    except OSError as exc:  # the checker is missing or cannot run
        answer = {"returncode": 127, "stdout": "", "stderr": f"cannot run {command[0]}: {exc}"}
    partial = result_path.with_name(result_path.name + ".part")
    partial.write_text(json.dumps(answer), encoding="utf-8")
    os.replace(partial, result_path)


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


if __name__ == "__main__":
    path, timeout, separator, *rest = sys.argv[1:]
    if separator != "--" or not rest:
        sys.exit(f"usage: {Path(__file__).name} RESULT.json TIMEOUT_S -- COMMAND...")
    record(Path(path), float(timeout), rest)
