"""docs/faults.md shows the fault matrix the tests run: the table there equals fault_matrix.table()."""

from __future__ import annotations

from pathlib import Path

from fault_matrix import CASES, table

DOC = Path(__file__).resolve().parents[2] / "docs" / "faults.md"
BEGIN, END = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"


def test_the_documented_matrix_is_the_tested_one() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == table(), "docs/faults.md is out of date: paste tests/pipeline/fault_matrix.table() there"


def test_every_case_has_a_unique_name_and_every_stage_is_covered() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert {case.stage for case in CASES} == {"upload", "preprocess", "analysis", "postprocess", "notices",
                                               "lineage", "execution"}
