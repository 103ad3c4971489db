"""The array module the simulation runs on: NumPy on CPU, CuPy on a GPU.

The simulation code is written once against `backend.xp`. `select_backend`
picks CuPy when it imports and sees a GPU, else NumPy; the choice can be
forced with THREADLINE_ARRAY_BACKEND=numpy|cupy|auto. Random numbers come
from a generator seeded by (run seed, block, stream) only, so a block's
numbers do not depend on which node draws them. NumPy and CuPy generators
differ, so results are bit-identical across node counts on one backend,
not between CPU and GPU.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from jobkit.errors import UsageError

ENV_VAR = "THREADLINE_ARRAY_BACKEND"
CHOICES = ("auto", "numpy", "cupy")
log = logging.getLogger("analysis")

Importer = Callable[[str], ModuleType]


def stream_seed(seed: int, block: int, stream: int) -> np.random.SeedSequence:
    """The seed of one random stream; depends on nothing but these three numbers."""
    return np.random.SeedSequence([seed, block, stream])


@dataclass(frozen=True)
class Backend:
    name: str
    xp: ModuleType
    reason: str

    def normal(self, seed: int, block: int, stream: int, shape: tuple[int, int]) -> Any:
        """Standard normal draws of one (seed, block, stream), as an array of `xp`."""
        sequence = stream_seed(seed, block, stream)
        if self.name == "numpy":
            return np.random.Generator(np.random.PCG64(sequence)).standard_normal(shape)
        state = int(sequence.generate_state(1, np.uint64)[0])
        return self.xp.random.default_rng(state).standard_normal(shape, dtype=self.xp.float64)

    def asarray(self, values: np.ndarray) -> Any:
        return self.xp.asarray(values)

    def to_numpy(self, values: Any) -> np.ndarray:
        return values.get() if self.name == "cupy" else np.asarray(values)


def numpy_backend(reason: str = "chosen") -> Backend:
    return Backend("numpy", np, reason)


def _gpu_count(cupy: ModuleType) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # CUDA missing or broken drivers raise CUDA-specific errors
        return 0


def select_backend(preference: str | None = None, importer: Importer = importlib.import_module) -> Backend:
    """The backend to run on; raises UsageError when a forced choice is impossible."""
    choice = (preference or os.environ.get(ENV_VAR, "") or "auto").strip().lower()
    if choice not in CHOICES:
        raise UsageError(f"{ENV_VAR}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "numpy":
        return numpy_backend(f"{ENV_VAR}=numpy")
    try:
        cupy = importer("cupy")
    except ImportError as exc:
        if choice == "cupy":
            raise UsageError(f"{ENV_VAR}=cupy but CuPy cannot be imported: {exc}") from exc
        return numpy_backend("CuPy is not installed")
    if _gpu_count(cupy) == 0:
        if choice == "cupy":
            raise UsageError(f"{ENV_VAR}=cupy but no GPU is visible")
        return numpy_backend("CuPy is installed but no GPU is visible")
    return Backend("cupy", cupy, "a GPU is visible")
