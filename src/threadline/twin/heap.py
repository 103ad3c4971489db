"""How the twin's process uses the garbage collector around its long-lived heap.

A started twin holds moto's and botocore's models, moto's backends and what the
template provisioned: about 280,000 objects that live as long as the twin does.
The collector's generational passes walk them again and again while they are
made, and at exit walks them all once more, yet almost none of them is garbage:

- no collection runs while the twin starts, and what the start leaves alive is
  then frozen out of later collections (`gc.freeze`): the start's collections
  took about 0.2 s of its 1.1 s of CPU after the imports. Cyclic garbage made
  during the start is kept until the twin stops: about 850 objects.
- `stop()` thaws the frozen objects, so that a process that starts twin after
  twin (the tests) gets each stopped twin's memory back;
- at the process's exit, the heap is frozen before the interpreter's last
  collections: they took about a second of every `threadline` command's exit.
  Frozen objects are left to the operating system; objects in reference cycles
  are then not finalised at exit. Nothing in the twin relies on that (its state
  is saved by `stop()`, and files are closed where they are written).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def start_without_collections() -> Iterator[None]:
    """No collections in the block; when it ends well, what is alive is frozen out of later ones."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


def thaw() -> None:
    """Give frozen objects back to the collector (a stopped twin's among them)."""
    gc.unfreeze()


@functools.cache
def exit_without_final_collection() -> None:
    """Register, once: at the process's exit, freeze the heap before the interpreter's last collections."""
    atexit.register(gc.freeze)
