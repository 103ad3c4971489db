"""The post-processing job: merge partials, compute risk, write the report, update the run record.

    python -m postprocess --run-id ID --partials-prefix s3://intermediate/runs/ID/analysis/
        --num-nodes 2 --validation-uri s3://intermediate/runs/ID/preprocess/validation.json
        --report-prefix s3://results/runs/ID/

Needs RUN_TABLE (the DynamoDB run table). Writes report.json and report.html
under the report prefix, then sets status SUCCEEDED and the results on the
run record.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobkit import cli, usage
from jobkit.aws import S3, client
from jobkit.errors import JobError
from jobkit.s3uri import S3Uri

from . import report_html
from .merge import Merged, check_names, merge
from .risk import RiskFigures, risk_figures
from .runrecord import update_run

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
log = logging.getLogger("postprocess")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.JobArgumentParser(prog="python -m postprocess", description="Merge partial P&L into a risk report.")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--partials-prefix", required=True, type=cli.s3_prefix)
    parser.add_argument("--num-nodes", required=True, type=cli.positive_int)
    parser.add_argument("--validation-uri", required=True, type=cli.s3_object)
    parser.add_argument("--report-prefix", required=True, type=cli.s3_prefix)
    return parser.parse_args(argv)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def accepted_rejected(validation: Any, uri: S3Uri) -> tuple[int, int, float | None]:
    """Accepted and rejected rows and the pre-processing duration from validation.json."""
    try:
        rows = validation["rows"]
        accepted, rejected = int(rows["accepted"]), int(rows["rejected"])
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"{uri} has no row counts: {exc}") from exc
    if validation.get("status") != "passed":
        raise JobError(f"{uri} says the input did not pass validation")
    duration = validation.get("duration_s")
    return accepted, rejected, float(duration) if isinstance(duration, (int, float)) else None


def build_report(args: argparse.Namespace, merged: Merged, figures: RiskFigures,
                 accepted: int, rejected: int) -> dict[str, Any]:
    first = merged.infos[0]
    return {
        "run_id": args.run_id,
        "risk": figures.as_dict(),
        "run": {
            "run_id": args.run_id,
            "scenarios": first.scenarios,
            "horizon_days": first.horizon_days,
            "seed": first.seed,
            "positions": first.positions,
            "gross_exposure": first.gross_exposure,
            "net_exposure": first.net_exposure,
            "num_nodes": first.num_nodes,
            "backend": ", ".join(sorted({info.backend for info in merged.infos})),
            "accepted_rows": accepted,
            "rejected_rows": rejected,
        },
        "nodes": [
            {"node_index": info.node_index, "blocks": [info.first_block, info.end_block],
             "backend": info.backend, "elapsed_s": info.elapsed_s}
            for info in merged.infos
        ],
        "inputs": {"partials_prefix": str(args.partials_prefix), "validation": str(args.validation_uri)},
        "created_at": _now(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    started = time.perf_counter()
    args = parse_args(argv)
    usage.report_to(args.partials_prefix.bucket, args.run_id)
    table = cli.env_required("RUN_TABLE")
    s3 = S3()
    accepted, rejected, preprocess_s = accepted_rejected(s3.get_json(args.validation_uri), args.validation_uri)
    names = check_names(s3.list_keys(args.partials_prefix), args.num_nodes)
    with tempfile.TemporaryDirectory(prefix="postprocess-") as tmp:
        paths = {}
        for node, name in names.items():
            paths[node] = Path(tmp) / name
            s3.download(args.partials_prefix.join(name), paths[node])
        merged = merge(paths, args.run_id)
    figures = risk_figures(merged.pnl)
    report = build_report(args, merged, figures, accepted, rejected)
    json_uri, html_uri = args.report_prefix.join(REPORT_JSON), args.report_prefix.join(REPORT_HTML)
    s3.put_bytes(json.dumps(report, indent=2).encode("utf-8"), json_uri, "application/json")
    html = report_html.render(report, figures, merged.pnl)
    s3.put_bytes(html.encode("utf-8"), html_uri, "text/html; charset=utf-8")
    durations: dict[str, float] = {
        "analysis": max(info.elapsed_s for info in merged.infos),
        "postprocess": round(time.perf_counter() - started, 3),
    }
    if preprocess_s is not None:
        durations["preprocess"] = preprocess_s
    update_run(client("dynamodb"), table, args.run_id, {
        "status": "SUCCEEDED",
        "accepted_rows": accepted,
        "rejected_rows": rejected,
        "risk": {"var_95": figures.var_95, "var_99": figures.var_99, "es_975": figures.es_975,
                 "mean_pnl": figures.mean_pnl, "scenarios": figures.scenarios},
        "outputs": {"report_json": str(json_uri), "report_html": str(html_uri),
                    "partials_prefix": str(args.partials_prefix), "validation": str(args.validation_uri)},
        "durations_s": durations,
        "finished_at": _now(),
    })
    log.info("VaR95 %.2f VaR99 %.2f ES97.5 %.2f over %d scenarios; report at %s",
             figures.var_95, figures.var_99, figures.es_975, figures.scenarios, html_uri)
