"""Example position files for the portfolio-risk pipeline.

Writes a CSV of positions in the layout that the pre-processing job validates
(`jobs/preprocess/positions.schema.json`), optionally with an exact share of bad
rows, each with one defect the validation must catch. The output is a pure
function of (rows, bad share, seed) and is streamed to disk in chunks, so files
of tens of millions of rows need little memory. Standard library only, so the
`threadline` CLI gains no dependency from it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

COLUMNS: tuple[str, ...] = (
    "position_id",
    "asset",
    "sector",
    "quantity",
    "price",
    "annual_vol",
    "annual_drift",
    "beta",
)

# Must equal the `allowed` list of `sector` in the schema (a test checks it).
SECTORS: tuple[str, ...] = (
    "communication_services",
    "consumer_discretionary",
    "consumer_staples",
    "energy",
    "financials",
    "health_care",
    "industrials",
    "information_technology",
    "materials",
    "real_estate",
    "utilities",
)

# One defect per bad row; each breaks exactly one schema rule.
DEFECTS: tuple[str, ...] = (
    "price_negative",
    "price_zero",
    "price_nan",
    "vol_too_high",
    "vol_zero",
    "beta_out_of_range",
    "sector_unknown",
    "sector_formula",
    "asset_missing",
    "quantity_text",
    "quantity_formula",
    "duplicate_id",
)

ASSET_COUNT = 400
BUNDLED_SEED = 42  # seed of data/sample-positions.csv (200 clean rows)
CHUNK_ROWS = 50_000
_PER_MILLION = 1_000_000
_RECENT = 100  # duplicates copy one of this many latest clean ids


@dataclass(frozen=True)
class Asset:
    """An instrument that positions are held in; price and risk are per asset."""

    name: str
    sector: str
    price: float
    vol: float
    drift: float
    beta: float


def _asset_universe(rng: random.Random) -> list[Asset]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    tickers: set[str] = set()
    while len(tickers) < ASSET_COUNT:
        tickers.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 5))))
    assets = []
    for i, ticker in enumerate(sorted(tickers)):
        # Every 20th asset has a comma in its name, so clean files need quoting.
        name = f"{ticker}, Class B" if i % 20 == 7 else ticker
        assets.append(
            Asset(
                name=name,
                sector=rng.choice(SECTORS),
                price=round(rng.lognormvariate(4.0, 0.8), 2) or 0.01,
                vol=rng.uniform(0.12, 0.65),
                drift=rng.uniform(-0.02, 0.12),
                beta=rng.uniform(0.25, 0.95),
            )
        )
    return assets


def _clean_row(i: int, rng: random.Random, assets: Sequence[Asset]) -> list[str]:
    asset = assets[rng.randrange(len(assets))]
    size = max(1, int(rng.lognormvariate(5.5, 1.2)))
    quantity = -size if rng.random() < 0.2 else size
    return [
        f"POS-{i + 1:08d}",
        asset.name,
        asset.sector,
        str(quantity),
        f"{asset.price:.2f}",
        f"{asset.vol:.4f}",
        f"{asset.drift:.4f}",
        f"{asset.beta:.3f}",
    ]


def _break(row: list[str], defect: str, rng: random.Random, clean_ids: list[str]) -> None:
    """Apply one defect in place; `clean_ids` are ids of earlier clean rows."""
    match defect:
        case "price_negative":
            row[4] = f"-{row[4]}"
        case "price_zero":
            row[4] = "0"
        case "price_nan":
            row[4] = "NaN"
        case "vol_too_high":
            row[5] = f"{rng.uniform(5.5, 40.0):.2f}"
        case "vol_zero":
            row[5] = "0.0"
        case "beta_out_of_range":
            row[7] = f"{rng.uniform(1.2, 3.0):.3f}"
        case "sector_unknown":
            row[2] = "crypto"
        case "sector_formula":
            row[2] = '=HYPERLINK("http://example.invalid","x")'
        case "asset_missing":
            row[1] = ""
        case "quantity_text":
            row[3] = f"{row[3]}a"
        case "quantity_formula":
            row[3] = "+SUM(1,2)"
        case "duplicate_id":
            row[0] = clean_ids[rng.randrange(len(clean_ids))]
        case _:
            raise ValueError(f"unknown defect {defect!r}")


def _is_bad(i: int, per_million: int) -> bool:
    """Spread bad rows evenly: exactly floor(rows * share) of them in total."""
    return (i + 1) * per_million // _PER_MILLION > i * per_million // _PER_MILLION


def bad_row_count(rows: int, bad_share: float) -> int:
    """How many bad rows `generate` makes for these arguments."""
    return rows * _per_million(bad_share) // _PER_MILLION


def _per_million(bad_share: float) -> int:
    if not 0.0 <= bad_share <= 1.0:
        raise ValueError("bad share must be between 0 and 1")
    return round(bad_share * _PER_MILLION)


def generate(rows: int, bad_share: float = 0.0, seed: int = 7) -> Iterator[list[str]]:
    """Yield data rows (no header).

    A duplicate copies the id of one of the last clean rows, so every bad row
    is rejected exactly once whatever the share.
    """
    per_million = _per_million(bad_share)
    rng = random.Random(seed)
    assets = _asset_universe(rng)
    recent_clean: list[str] = []
    for i in range(rows):
        row = _clean_row(i, rng, assets)
        if _is_bad(i, per_million):
            defects = DEFECTS if recent_clean else DEFECTS[:-1]
            _break(row, rng.choice(defects), rng, recent_clean)
        else:
            recent_clean.append(row[0])
            del recent_clean[:-_RECENT]
        yield row


def write(out: TextIO, rows: int, bad_share: float = 0.0, seed: int = 7) -> None:
    """Write header and rows as CSV (LF line ends, minimal quoting) to `out`."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    chunk: list[list[str]] = []
    for row in generate(rows, bad_share, seed):
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            writer.writerows(chunk)
            chunk.clear()
    writer.writerows(chunk)


def _open_out(path: str) -> io.TextIOWrapper:
    if path == "-":
        return io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
    if path.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=6)
    return open(path, "w", encoding="utf-8", newline="")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadline-samples",
        description="Write an example positions CSV (.csv or .csv.gz) for the pipeline.",
    )
    parser.add_argument("--rows", type=int, default=200, help="data rows to write (default 200)")
    parser.add_argument(
        "--bad-share",
        type=float,
        default=0.0,
        help="share of rows with one defect each, 0..1 (default 0)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", default="-", help="output path; .gz compresses; - for stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    if not 0.0 <= args.bad_share <= 1.0:
        parser.error("--bad-share must be between 0 and 1")
    out = _open_out(args.out)
    try:
        write(out, args.rows, args.bad_share, args.seed)
    finally:
        if args.out == "-":
            out.flush()
            out.detach()
        else:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
