"""Find and merge the analysis partials: exactly one per node, covering every scenario once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobkit.errors import JobError
from jobkit.partials import PartialInfo, node_of, partial_name, read_partial


@dataclass(frozen=True)
class Merged:
    pnl: np.ndarray  # in scenario order
    infos: list[PartialInfo]  # in node order


def check_names(names: list[str], num_nodes: int) -> dict[int, str]:
    """Node index -> file name; a missing or unexpected node's partial is an error naming it."""
    found: dict[int, str] = {}
    for name in names:
        node = node_of(name)
        if node is not None:
            found[node] = name
    extra = sorted(n for n in found if n >= num_nodes)
    if extra:
        raise JobError(f"unexpected partial from node {extra[0]} ({found[extra[0]]}); "
                       f"the analysis was expected to run on {num_nodes} node(s)")
    missing = [n for n in range(num_nodes) if n not in found]
    if missing:
        raise JobError(f"missing partial from node {missing[0]} ({partial_name(missing[0])}); "
                       f"{len(missing)} of {num_nodes} node(s) wrote nothing")
    return found


def merge(paths: dict[int, Path], run_id: str) -> Merged:
    """Read the partials in node order, check they belong together, put the P&L in scenario order."""
    scenarios: list[np.ndarray] = []
    pnls: list[np.ndarray] = []
    infos: list[PartialInfo] = []
    for node in sorted(paths):
        try:
            scenario, pnl, info = read_partial(paths[node])
        except ValueError as exc:
            raise JobError(f"partial from node {node} is unreadable: {exc}") from exc
        if info.node_index != node:
            raise JobError(f"partial {partial_name(node)} says it comes from node {info.node_index}")
        if infos:
            first = infos[0]
            # A resumed run merges an earlier run's analysis, so the partials need not carry this run's
            # id; they must carry one and the same run id (and plan) among themselves.
            for field in ("run_id", "num_nodes", "scenarios", "seed", "horizon_days", "block_size"):
                if getattr(info, field) != getattr(first, field):
                    raise JobError(f"partial from node {node} disagrees with node {first.node_index} on {field}")
        if info.num_nodes != len(paths):
            raise JobError(f"partial from node {node} was written for {info.num_nodes} node(s), "
                           f"not {len(paths)}")
        scenarios.append(scenario)
        pnls.append(pnl)
        infos.append(info)
    scenario = np.concatenate(scenarios)
    pnl = np.concatenate(pnls)
    total = infos[0].scenarios
    order = np.argsort(scenario, kind="stable")
    if len(scenario) != total or not np.array_equal(scenario[order], np.arange(total)):
        raise JobError(f"the partials do not cover scenarios 0..{total - 1} exactly once "
                       f"({len(scenario)} scenario results found)")
    return Merged(pnl=pnl[order], infos=infos)
