"""The example CSV generator (threadline.samples)."""

from __future__ import annotations

import csv
import gzip

import pytest

from threadline import samples

from jobs_helpers import write_sample


def test_same_arguments_same_bytes(tmp_path):
    a = write_sample(tmp_path / "a.csv", rows=50, bad_share=0.1, seed=5)
    b = write_sample(tmp_path / "b.csv", rows=50, bad_share=0.1, seed=5)
    c = write_sample(tmp_path / "c.csv", rows=50, bad_share=0.1, seed=6)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_rows_header_and_exact_bad_count(tmp_path):
    path = write_sample(tmp_path / "s.csv", rows=1000, bad_share=0.07)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == samples.COLUMNS and len(rows) == 1001
    assert all(len(r) == len(samples.COLUMNS) for r in rows)
    assert samples.bad_row_count(1000, 0.07) == 70
    assert any("," in r[1] for r in rows[1:])  # some asset names need quoting


def test_gzip_output(tmp_path):
    path = write_sample(tmp_path / "s.csv.gz", rows=20)
    assert gzip.decompress(path.read_bytes()).decode().splitlines()[0] == ",".join(samples.COLUMNS)


def test_bad_arguments_exit_2():
    for argv in (["--bad-share", "1.5"], ["--rows", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            samples.main(argv)
        assert exit_info.value.code == 2
