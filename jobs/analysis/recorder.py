"""Progress and checkpoints of one node, written into the shared folder as its blocks finish.

Progress is written after every block (a few hundred bytes). A checkpoint holds
all the P&L so far, so it is written by time, not by block count: at most once
every CHECKPOINT_EVERY_S seconds of compute, and after the last block. A block
costs 4096 scenarios x positions draws, from milliseconds for a small portfolio
to seconds for a large one, so no fixed block count fits both; five seconds
bounds what a Spot reclamation loses (plus the sidecar's shipping interval)
while the writes (8 bytes per scenario done) stay a small fraction of compute.

The folder only helps a retry resume: a failed write is logged and the
simulation goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jobkit import cli

from .checkpoint import Checkpoint, Plan
from .model import ScenarioSchedule
from .shared import CHECKPOINT_FILE, Progress, utc_now, write_atomic

log = logging.getLogger("analysis")

CHECKPOINT_EVERY_S = 5.0


@dataclass
class Recorder:
    folder: Path
    run_id: str
    job_id: str
    attempt: int
    plan: Plan
    schedule: ScenarioSchedule
    blocks: range
    resumed_blocks: int = 0
    _last_checkpoint: float = field(default_factory=time.monotonic)
    _failed: bool = False

    @classmethod
    def for_attempt(cls, folder: Path, run_id: str, plan: Plan, schedule: ScenarioSchedule, blocks: range,
                    resumed_blocks: int) -> Recorder:
        """A recorder for this Batch attempt, as AWS_BATCH_JOB_ID and AWS_BATCH_JOB_ATTEMPT name it."""
        return cls(folder, run_id, os.environ.get("AWS_BATCH_JOB_ID", ""), cli.env_int("AWS_BATCH_JOB_ATTEMPT", 1),
                   plan, schedule, blocks, resumed_blocks)

    def progress(self, blocks_done: int) -> None:
        done = self.blocks[:blocks_done]
        scenarios_done = sum(len(self.schedule.block_scenarios(block)) for block in done)
        progress = Progress(
            run_id=self.run_id, job_id=self.job_id, node_index=self.plan.node_index,
            num_nodes=self.plan.num_nodes, attempt=self.attempt, blocks_done=blocks_done,
            blocks_total=len(self.blocks), scenarios_done=scenarios_done,
            scenarios_total=sum(len(self.schedule.block_scenarios(block)) for block in self.blocks),
            resumed_blocks=self.resumed_blocks, updated_at=utc_now(),
        )
        self._write(lambda: progress.write(self.folder))

    def block_done(self, blocks_done: int, pnl_parts: list[np.ndarray]) -> None:
        """Record that the node's first `blocks_done` blocks are done, their P&L in `pnl_parts`."""
        self.progress(blocks_done)
        last = blocks_done == len(self.blocks)
        if last or time.monotonic() - self._last_checkpoint >= CHECKPOINT_EVERY_S:
            checkpoint = Checkpoint(self.plan, self.run_id, blocks_done, np.concatenate(pnl_parts))
            self._write(lambda: write_atomic(self.folder / CHECKPOINT_FILE, checkpoint.encode()))
            self._last_checkpoint = time.monotonic()

    def _write(self, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as exc:
            if not self._failed:  # once: a full disk would otherwise log every block
                log.warning("cannot write to the shared folder %s (%s); the simulation goes on", self.folder, exc)
            self._failed = True
