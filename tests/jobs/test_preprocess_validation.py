"""The validation core on local files: rules, line numbers, CSV dialect cases, file-level failures."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from preprocess import duplicates as duplicates_module, rejects as rejects_module, staging, typed_load
from preprocess.escaping import safe_text, sql_macro
from preprocess.schema import parse_schema
from preprocess.sources import count_lines
from preprocess.validate import validate_file
from threadline import samples

from jobs_helpers import HEADER, row, write_csv, write_sample

PARSED_NUMBER_RULES = {"not_finite", "too_small", "too_large"}


def run(tmp_path: Path, text: str | bytes, share: float = 1.0, name: str = "in.csv"):
    return validate_file(write_csv(tmp_path / name, text), tmp_path / "out", share)


def entries(result) -> list[tuple]:
    return [(e["line"], e["column"], e["rule"]) for e in result.report["rejects"]]


def read_rejects_csv(result) -> list[dict[str, str]]:
    with open(result.rejects, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_clean_sample_passes_and_writes_typed_parquet(tmp_path):
    path = write_sample(tmp_path / "s.csv", rows=120)
    result = validate_file(path, tmp_path / "out")
    assert result.passed and result.report["status"] == "passed"
    assert result.report["rows"] == {"read": 120, "accepted": 120, "rejected": 0}
    assert result.rejects is None and result.report["rejects"] == []
    table = pq.read_table(result.clean)
    assert table.column_names == list(samples.COLUMNS)
    assert str(table.schema.field("price").type) == "double"
    assert str(table.schema.field("position_id").type) == "string"
    assert table.column("position_id").to_pylist()[:2] == ["POS-00000001", "POS-00000002"]
    assert "accepted: 120 rows read, 120 accepted, 0 rejected" in result.report["summary"]


def test_generated_bad_rows_are_all_rejected_exactly_once(tmp_path):
    path = write_sample(tmp_path / "s.csv", rows=400, bad_share=0.1, seed=3)
    result = validate_file(path, tmp_path / "out", max_reject_share=0.2)
    assert result.passed
    assert result.report["rows"] == {"read": 400, "accepted": 360, "rejected": 40}
    # Bad rows sit at every 10th record, so on lines 11, 21, ...
    lines = sorted({e["line"] for e in read_rejects_csv(result)}, key=int)
    assert lines == [str(10 * k + 1) for k in range(1, 41)]
    assert pq.read_metadata(result.clean).num_rows == 360


def test_each_rule_names_line_column_and_reason(tmp_path):
    text = "\n".join([
        HEADER,
        row("P1"),
        row("P2", price="-1"),
        row("P3", vol="5.5"),
        row("P4", vol="0"),
        row("P5", sector="crypto"),
        row("P6", quantity="12x"),
        row("P7", asset=""),
        row("P8", beta="1.2"),
        row("P9", drift="inf"),
        row("P10", asset="A" * 129),
        row("P1"),
        row("P12", price="NaN", quantity="   "),
        row("P13", vol="5"),
        row("P14", quantity="-3.5e2"),
    ]) + "\n"
    result = run(tmp_path, text)
    assert entries(result) == [
        (3, "price", "too_small"),
        (4, "annual_vol", "too_large"),
        (5, "annual_vol", "too_small"),
        (6, "sector", "not_allowed"),
        (7, "quantity", "not_a_number"),
        (8, "asset", "missing"),
        (9, "beta", "too_large"),
        (10, "annual_drift", "not_finite"),
        (11, "asset", "too_long"),
        (12, "position_id", "duplicate"),
        (13, "quantity", "missing"),
        (13, "price", "not_finite"),
    ]
    reasons = {(e["column"], e["rule"]): e["reason"] for e in result.report["rejects"]}
    assert reasons[("price", "too_small")] == "must be > 0"
    assert reasons[("annual_vol", "too_large")] == "must be <= 5"
    assert reasons[("position_id", "duplicate")] == "duplicate position_id (first on line 2, record 1)"
    assert result.report["rows"] == {"read": 14, "accepted": 3, "rejected": 11}
    clean = pq.read_table(result.clean).to_pydict()
    assert clean["position_id"] == ["P1", "P13", "P14"]
    assert clean["quantity"] == [10.0, 10.0, -350.0]


def test_duplicates_count_only_rows_that_pass_other_rules(tmp_path):
    text = "\n".join([HEADER, row("A", price="0"), row("A"), row("B"), row("A"), row("B")]) + "\n"
    result = run(tmp_path, text)
    assert entries(result) == [(2, "price", "too_small"), (5, "position_id", "duplicate"),
                               (6, "position_id", "duplicate")]
    assert pq.read_table(result.clean).column("position_id").to_pylist() == ["A", "B"]


def test_keys_sharing_a_hash_are_compared_by_key(tmp_path, monkeypatch):
    """A repeated hash only makes rows candidates; distinct keys among them are not duplicates.

    Treating every hash as repeated stands in for hash collisions between distinct keys.
    """
    text = "\n".join([HEADER, row("A"), row("B"), row("C"), row("A"), row("D"), row("B")]) + "\n"
    expected = [(5, "position_id", "duplicate"), (7, "position_id", "duplicate")]
    assert entries(run(tmp_path, text, name="hashed.csv")) == expected
    monkeypatch.setattr(duplicates_module, "_repeated_hashes", lambda hashes: np.unique(hashes))
    result = run(tmp_path, text, name="all-candidates.csv")
    assert entries(result) == expected
    assert pq.read_table(result.clean).column("position_id").to_pylist() == ["A", "B", "C", "D"]


def test_bom_crlf_and_quoted_commas(tmp_path):
    body = "\r\n".join([HEADER, row("P1", asset='"Acme, Inc."'), row("P2", price="-2")]) + "\r\n"
    result = run(tmp_path, b"\xef\xbb\xbf" + body.encode())
    assert entries(result) == [(3, "price", "too_small")]
    assert pq.read_table(result.clean).column("asset").to_pylist() == ["Acme, Inc."]


def test_quoted_newlines_keep_physical_line_numbers(tmp_path):
    text = "\r\n".join([
        HEADER,
        row("P1", asset='"two\r\nlines"'),
        row("P2", asset='"three\nlines\nhere"'),
        row("P3", price="0"),
        "",
        row("P4", sector="nope"),
    ]) + "\r\n\r\n"
    result = run(tmp_path, text)
    # P3 starts on line 7 (header 1, P1 2-3, P2 4-6); a blank line 8; P4 on 9.
    assert entries(result) == [(7, "price", "too_small"), (9, "sector", "not_allowed")]
    assert result.report["line_numbers"] == "exact"
    assert pq.read_table(result.clean).column("asset").to_pylist() == ["two\r\nlines", "three\nlines\nhere"]


def test_gzip_input_and_header_in_any_order(tmp_path):
    names = HEADER.split(",")
    order = list(reversed(names))
    lines = [",".join(order)]
    for values in (row("P1").split(","), row("P2", price="-1").split(",")):
        lines.append(",".join(reversed(values)))
    path = tmp_path / "in.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    result = validate_file(path, tmp_path / "out", 1.0)
    assert result.report["input"]["compression"] == "gzip"
    assert entries(result) == [(3, "price", "too_small")]
    assert pq.read_table(result.clean).column_names == names


def test_formulas_never_reach_reports_unescaped(tmp_path):
    text = "\n".join([
        HEADER,
        row("P1", sector='"=HYPERLINK(""http://x.invalid"",""go"")"'),
        row("P2", quantity="+SUM(A1:A2)"),
        row("P3", sector="@cmd"),
        row("P4", price="-7.5"),
        row("P5", quantity="-1+2"),
    ]) + "\n"
    result = run(tmp_path, text)
    values = [e["value"] for e in result.report["rejects"]]
    assert values == ["'=HYPERLINK(\"http://x.invalid\",\"go\")", "'+SUM(A1:A2)", "'@cmd", "-7.5", "'-1+2"]
    csv_values = [e["value"] for e in read_rejects_csv(result)]
    assert csv_values == values
    assert not any(v[0] in "=+@" for v in csv_values)


def test_formula_in_header_is_escaped_in_summary(tmp_path):
    result = run(tmp_path, HEADER + ",=cmd|' /C calc'!A0\n" + row() + ",x\n")
    assert not result.passed
    assert "unknown column(s) \"'=cmd|' /C calc'!A0\"" in result.report["summary"]


# Values a spreadsheet may run as a formula: ASCII signs, the same after whitespace that
# importers trim (space, tab, line feed, carriage return, ...), and the full-width signs.
FORMULA_CASES = [
    "=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "\n=1+2", " =1+2", "  @cmd", "\v=1", "\f=1",
    "\u00a0=1", "\u3000=1", "\uff1d1+2", "\uff0bSUM(A1)", "\uff0d2+3", "\uff20cmd", "\uff1d",
]
# Values that stay as they are: plain numbers (a full-width one is not one) and ordinary text.
KEPT_CASES = ["-3.5", "+1", "1e5", "plain", "", "é", "x=1", "a\n=1", "caf\u00e9 = 1"]


@pytest.mark.parametrize("value", FORMULA_CASES)
def test_formula_starts_are_escaped(value):
    assert safe_text(value) == "'" + value


@pytest.mark.parametrize("value", KEPT_CASES)
def test_plain_values_are_kept(value):
    assert safe_text(value) == value


def test_escaping_python_and_sql_agree():
    con = duckdb.connect()
    con.execute(sql_macro())
    cases = ["-", "-3.5\n", " -3.5", "\uff0d3.5", "x" * 300, " " + "x" * 300, *FORMULA_CASES, *KEPT_CASES]
    for case in cases:
        assert con.execute("SELECT safe_text(?)", [case]).fetchone()[0] == safe_text(case), case


def test_whitespace_and_full_width_formulas_are_escaped_in_reports(tmp_path):
    text = "\n".join([
        HEADER,
        row("P1", sector='" =HYPERLINK(""http://x.invalid"",""go"")"'),
        row("P2", sector='"\n@cmd"'),
        row("P3", sector="\uff1dcmd|' /C calc'!A0"),
        row("P4", quantity="\uff0d1+2"),
    ]) + "\n"
    result = run(tmp_path, text)
    values = [e["value"] for e in result.report["rejects"]]
    assert values == ["' =HYPERLINK(\"http://x.invalid\",\"go\")", "'\n@cmd", "'\uff1dcmd|' /C calc'!A0", "'\uff0d1+2"]
    assert [e["value"] for e in read_rejects_csv(result)] == values


@pytest.mark.parametrize(
    ("content", "reason", "line"),
    [
        (b"", "the file is empty", None),
        (HEADER.encode() + b"\n", "the file has a header but no data rows", None),
        (b"position_id,asset,sector\n1,2,3\n", "wrong header: it lacks column(s) 'quantity'", 1),
        ((HEADER + ",extra\n").encode(), "has unknown column(s) 'extra'", 1),
        ((HEADER + ",asset\n").encode(), "the header repeats column(s) 'asset'", 1),
        ((HEADER + "\n" + row() + "\n" + "P2,ACME,energy\n").encode(), "line 3 has 3 field(s), the header has 8", 3),
        ((HEADER + "\n" + row() + ",9\n").encode(), "line 2 has 9 field(s), the header has 8", 2),
        ((HEADER + "\n" + row() + "\n" + row("P2", asset="caf\xe9")).encode("latin-1"), "line 3 is not valid UTF-8", 3),
        ("\ufeff".encode("utf-16-le") + HEADER.encode("utf-16-le"), "not UTF-8", None),
        ((HEADER + "\n" + row(asset='"open') + "\n" + row("P2") + "\n").encode(), "line 2", 2),
        ((HEADER + "\r" + row() + "\r").encode(), "bare carriage returns", 1),
        (b"\x1f\x8b\x08\x00garbage", "not valid gzip", None),
        (b"\n" + HEADER.encode() + b"\n", "line 1 is empty", 1),
    ],
    ids=["empty", "header-only", "missing-columns", "extra-column", "repeated-column", "short-row", "long-row",
         "latin-1", "utf-16", "unterminated-quote", "bare-cr", "bad-gzip", "blank-first-line"],
)
def test_unreadable_files_fail_with_reason(tmp_path, content, reason, line):
    result = run(tmp_path, content)
    assert not result.passed and result.clean is None
    report = result.report
    assert report["status"] == "failed"
    assert reason in report["file_error"]["reason"]
    assert report["file_error"]["line"] == line
    assert report["summary"].startswith("positions file rejected: ")
    json.dumps(report)  # serialisable as it is


def test_reject_share_threshold_is_inclusive(tmp_path):
    path = write_sample(tmp_path / "s.csv", rows=200, bad_share=0.05)
    at_limit = validate_file(path, tmp_path / "a", max_reject_share=0.05)
    assert at_limit.passed and at_limit.report["rows"]["rejected"] == 10
    over = validate_file(path, tmp_path / "b", max_reject_share=0.049)
    assert not over.passed and over.clean is None
    assert over.report["summary"].startswith("positions file rejected: 10 of 200 rows failed validation (5.0%")
    assert over.rejects is not None and len(read_rejects_csv(over)) == 10


def test_report_lists_a_sample_but_the_csv_lists_all(tmp_path, monkeypatch):
    monkeypatch.setattr(rejects_module, "SAMPLE_SIZE", 5)
    path = write_sample(tmp_path / "s.csv", rows=300, bad_share=0.1)
    result = validate_file(path, tmp_path / "out", 0.2)
    assert len(result.report["rejects"]) == 5
    assert result.report["reject_entries"] == 30
    assert len(read_rejects_csv(result)) == 30
    assert sum(item["rows"] for item in result.report["rejects_by_rule"]) == 30


def test_bundled_sample_is_clean_and_matches_the_generator(tmp_path):
    bundled = Path(samples.__file__).with_name("data") / "sample-positions.csv"
    regenerated = write_sample(tmp_path / "s.csv", rows=200, seed=samples.BUNDLED_SEED)
    assert bundled.read_bytes() == regenerated.read_bytes()
    result = validate_file(bundled, tmp_path / "out")
    assert result.report["rows"] == {"read": 200, "accepted": 200, "rejected": 0}


def test_optional_columns_and_a_composite_key(tmp_path):
    schema = parse_schema({
        "name": "trades", "unique_key": ["book", "trade"],
        "columns": [
            {"name": "book", "type": "string"},
            {"name": "trade", "type": "string"},
            {"name": "note", "type": "string", "required": False, "max_length": 5},
            {"name": "size", "type": "number", "required": False, "minimum": 0},
        ],
    })
    text = "book,trade,note,size\nA,1,,\nA,2,hi,3\nB,1, ,0\nA,1,x,1\nA,2,toolong,1\nC,9,,-1\n"
    result = validate_file(write_csv(tmp_path / "t.csv", text), tmp_path / "out", 1.0, schema)
    assert entries(result) == [(5, "book+trade", "duplicate"), (6, "note", "too_long"), (7, "size", "too_small")]
    assert result.report["rejects"][0]["value"] == "A | 1"
    clean = pq.read_table(result.clean).to_pydict()
    assert clean == {"book": ["A", "A", "B"], "trade": ["1", "2", "1"], "note": [None, "hi", " "],
                     "size": [None, 3.0, 0.0]}


def test_large_file_keeps_file_order_and_true_line_numbers(tmp_path):
    """Over DuckDB's multi-chunk CSV reading (~8 MB and up) rows must stay in file order.

    DuckDB 2.0.0 turns a long `IN (...)` list into a hash join that reorders rows
    across chunks; clean rows then came out shuffled and rejects named wrong lines.
    """
    path = tmp_path / "big.csv"
    assert samples.main(["--rows", "160000", "--bad-share", "0.01", "--seed", "11", "--out", str(path)]) == 0
    assert path.stat().st_size > 9_000_000
    result = validate_file(path, tmp_path / "out", 0.05)

    with open(path, newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))  # the generator writes no quoted line breaks: record = line
    header = lines[0]
    rejected_lines = set()
    for entry in read_rejects_csv(result):
        line = int(entry["line"])
        rejected_lines.add(line)
        column = "position_id" if entry["rule"] == "duplicate" else entry["column"]
        written = lines[line - 1][header.index(column)]
        if entry["rule"] in PARSED_NUMBER_RULES:  # reported as the number read, not as written
            assert np.array_equal([float(written)], [float(entry["value"].removeprefix("'"))], equal_nan=True), entry
        else:
            assert safe_text(written) == entry["value"], entry
    clean = pq.read_table(result.clean).column("position_id").to_pylist()
    expected = [lines[i][0] for i in range(1, len(lines)) if (i + 1) not in rejected_lines]
    assert clean == expected


@pytest.mark.parametrize("data", [
    b"h\na\nb\n", b"h\na\nb", b"h\r\na\r\n\r\n\r\n", b"h\na\n\n\n\n\n\n\n\n\n", b"\n\n\n\n\n\n\n\n\n\n\n",
    b"h\n" + b"x" * 70 + b"\n" + b"\r\n" * 40, b"", b"h\na\"\nb\"\n\n",
])
@pytest.mark.parametrize("chunk_size", [1, 3, 7, 4096])
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_line_count_matches_a_whole_file_count_at_any_chunk_size(tmp_path, data, chunk_size, compression):
    path = tmp_path / "f"
    path.write_bytes(gzip.compress(data) if compression == "gzip" else data)
    counted = count_lines(path, compression, chunk_size)
    body = data.rstrip(b"\r\n")
    assert (counted.newlines, counted.ends_with_newline, counted.trailing_newlines) == (
        data.count(b"\n"), data.endswith(b"\n"), data[len(body):].count(b"\n"))


ODD_VALUES_FILE = "\n".join([
    HEADER,
    row("P1", quantity=" 3.5 ", price="+1", vol=".5", drift="1_000", beta="5."),
    row("P2", quantity="0x10"),
    row("P3", price="1e999"),
    row("P4", drift="-inf", beta="NaN"),
    row("P5", quantity="", price="  "),
    row("P6", sector=" energy"),
    row("P7", sector="Energy"),
    row("P8", sector='""'),
    row("P9", asset="   "),
    row("P10", asset="é" * 100),  # 200 bytes, 100 characters: fits
    row("P11", asset="é" * 129),
    row("P12", asset='"Acme, ""Inc."""', beta="-1"),
    row("P1"),
    row("P13", quantity='"1,5"'),
    row("P14", price="0", vol="abc", sector="crypto"),
    row("P15", beta="1.0000001"),
    row("P12"),
    row("P16"),
]) + "\n"


@pytest.mark.parametrize("case", ["odd-values", "generated", "crlf-bom", "composite-key"])
def test_typed_and_text_paths_agree(tmp_path, monkeypatch, case):
    """The typed fast path gives the text path's verdicts, reasons, line numbers and clean rows."""
    schema = None
    if case == "odd-values":
        data: str | bytes = ODD_VALUES_FILE
    elif case == "generated":
        data = write_sample(tmp_path / "g.csv", rows=3000, bad_share=0.1, seed=5).read_bytes()
    elif case == "crlf-bom":
        data = b"\xef\xbb\xbf" + ODD_VALUES_FILE.replace("\n", "\r\n").encode()
    else:
        schema = parse_schema({
            "name": "trades", "unique_key": ["book", "trade"],
            "columns": [
                {"name": "book", "type": "string", "allowed": ["A", "B"]},
                {"name": "trade", "type": "string"},
                {"name": "note", "type": "string", "required": False, "max_length": 5},
                {"name": "size", "type": "number", "required": False, "minimum": 0},
            ],
        })
        data = "book,trade,note,size\nA,1,,\nA,2,hi,3\nB,1, ,0\nA,1,x,1\nA,2,toolong,1\nC,9,,-1\nB,1,,x\n"
    path = write_csv(tmp_path / "in.csv", data)

    decided = []
    finish = typed_load.finish
    monkeypatch.setattr(typed_load, "finish", lambda *a: decided.append(finish(*a)) or decided[-1])
    typed = validate_file(path, tmp_path / "typed", 1.0, schema)
    assert decided == [True], "the typed path stepped aside"
    monkeypatch.setattr(typed_load, "usable", lambda schema: False)
    text = validate_file(path, tmp_path / "text", 1.0, schema)

    def comparable(result):
        rows = []
        for entry in result.report["rejects"]:
            value = entry["value"]
            if entry["rule"] in PARSED_NUMBER_RULES:
                value = float(value.removeprefix("'"))  # a leading - gets the formula escape
                value = "nan" if value != value else value
            rows.append((entry["line"], entry["record"], entry["column"], entry["rule"], entry["reason"], value))
        return rows

    assert typed.report["rows"] == text.report["rows"]
    assert comparable(typed) == comparable(text)
    assert typed.report["rejects_by_rule"] == text.report["rejects_by_rule"]
    typed_clean, text_clean = pq.read_table(typed.clean), pq.read_table(text.clean)
    assert typed_clean.schema.types == text_clean.schema.types  # nullability may differ: DuckDB infers it
    assert typed_clean.to_pydict() == text_clean.to_pydict()
    assert typed.report["rows"]["rejected"] > 0


def test_typed_path_steps_aside_when_a_refused_record_passes_as_text(tmp_path, monkeypatch):
    """A blank optional ENUM value: the reader refuses it, the rules accept it; the text path decides.

    The duplicate rule was already running beside the re-check; the text path's answer must not mix with it.
    """
    schema = parse_schema({
        "name": "orders", "unique_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "kind", "type": "string", "required": False, "allowed": ["A", "B"]},
            {"name": "size", "type": "number"},
        ],
    })
    path = write_csv(tmp_path / "in.csv", "id,kind,size\n1,A,1\n2,  ,2\n1,B,3\n3,C,1\n4,B,-2\n4,A,5\n")
    decided = []
    finish = typed_load.finish
    monkeypatch.setattr(typed_load, "finish", lambda *a: decided.append(finish(*a)) or decided[-1])

    result = validate_file(path, tmp_path / "out", 1.0, schema)

    assert decided == [False]
    assert [(e["line"], e["column"], e["rule"]) for e in result.report["rejects"]] == [
        (4, "id", "duplicate"), (5, "kind", "not_allowed"), (7, "id", "duplicate")]
    assert result.report["rows"] == {"read": 6, "accepted": 3, "rejected": 3}
    assert pq.read_table(result.clean).to_pydict() == {
        "id": ["1", "2", "4"], "kind": ["A", "  ", "B"], "size": [1.0, 2.0, -2.0]}


@pytest.mark.parametrize(
    ("skipped", "expected"),
    [([2, 3, 7], [1, 4, 5, 6, 8, 9]), ([1], [2, 3, 4, 5, 6, 7]), ([], [1, 2, 3, 4, 5, 6]),
     ([7, 8], [1, 2, 3, 4, 5, 6])],
)
def test_numbering_skips_the_records_the_reader_refused(skipped, expected):
    con = duckdb.connect()
    con.execute("CREATE TABLE refused AS SELECT unnest($1::BIGINT[]) AS record", [skipped])
    staging.number_records(con, "SELECT record FROM refused" if skipped else None)
    rows = "SELECT range AS row FROM range(6)"
    numbered = con.execute(f"SELECT record FROM ({staging.with_records(rows)}) ORDER BY row").fetchall()
    assert [record for (record,) in numbered] == expected
