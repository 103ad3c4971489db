"""Run ids and the checks on an input object (threadline_common.naming, .run_input)."""

from __future__ import annotations

import hashlib
import re

from threadline_common.naming import key_stem, run_id_for
from threadline_common.run_input import SourceObject, execution_input, rejection_reason


def test_run_id_is_the_key_stem_and_a_hash_of_bucket_key_and_version() -> None:
    digest = hashlib.sha256(b"in/incoming/sample-positions.csv/v1").hexdigest()[:16]

    assert run_id_for("in", "incoming/sample-positions.csv", "v1", "etag") == f"sample-positions-{digest}"


def test_run_id_falls_back_to_the_etag_without_quotes() -> None:
    digest = hashlib.sha256(b"in/incoming/a.csv/abc123").hexdigest()[:16]

    assert run_id_for("in", "incoming/a.csv", None, '"abc123"') == f"a-{digest}"
    assert run_id_for("in", "incoming/a.csv", "null", "abc123") == f"a-{digest}"


def test_run_id_differs_per_version_and_repeats_per_version() -> None:
    assert run_id_for("in", "incoming/a.csv", "v1") == run_id_for("in", "incoming/a.csv", "v1")
    assert run_id_for("in", "incoming/a.csv", "v1") != run_id_for("in", "incoming/a.csv", "v2")
    assert run_id_for("in", "incoming/a.csv", "v1") != run_id_for("other", "incoming/a.csv", "v1")


def test_key_stem_keeps_only_allowed_characters_and_at_most_40() -> None:
    assert key_stem("incoming/2026/Q4 positions (final).csv.gz") == "Q4-positions-final"
    assert key_stem("incoming/" + "x" * 60 + ".csv") == "x" * 40
    assert key_stem("incoming/ümlaut.csv") == "mlaut"
    assert key_stem("incoming/%%%.csv") == "run"


def test_run_ids_are_valid_execution_names() -> None:
    run_id = run_id_for("b", "incoming/" + "é" * 30 + "a b" * 30 + ".csv", "v")

    assert len(run_id) <= 80
    assert re.fullmatch(r"[A-Za-z0-9_-]+", run_id)


def test_execution_input_follows_the_design_contract() -> None:
    source = SourceObject(bucket="in", key="incoming/a.csv", size=10, version_id="v1", etag="e")

    assert execution_input(source, "2026-11-21T19:40:00.000Z") == {
        "run_id": run_id_for("in", "incoming/a.csv", "v1", "e"),
        "source": {"bucket": "in", "key": "incoming/a.csv", "version_id": "v1", "etag": "e", "size": 10,
                   "uri": "s3://in/incoming/a.csv", "team": "shared"},
        "received_at": "2026-11-21T19:40:00.000Z",
    }


def test_rejection_reasons() -> None:
    ok = SourceObject(bucket="in", key="incoming/a.csv", size=10, etag="e")

    assert rejection_reason(ok, "incoming/", 10) is None
    assert rejection_reason(ok, "", 10) is None
    assert "limit" in rejection_reason(ok, "incoming/", 9)
