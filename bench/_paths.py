"""Make jobs/ and src/ importable when a benchmark runs from a checkout."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
for path in (ROOT / "jobs", ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
