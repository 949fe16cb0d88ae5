"""Counting XLA compilations, to hold the promise of one compilation per config."""
from __future__ import annotations

import contextlib
import dataclasses

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass
class CompileStats:
    """How many backend compilations ran inside the block, and their seconds."""

    count: int = 0
    seconds: float = 0.0


@contextlib.contextmanager
def count_compilations():
    """`with count_compilations() as stats: ...` counts XLA backend compilations in the block."""
    stats = CompileStats()

    def listener(event: str, duration: float, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            stats.count += 1
            stats.seconds += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield stats
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
