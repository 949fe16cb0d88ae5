"""Counting XLA compilations, to hold the promise of one compilation per config, and the
programs the persistent compilation cache (`compile_cache.py`) served instead."""
from __future__ import annotations

import contextlib
import dataclasses

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_REQUEST_EVENT = "/jax/compilation_cache/compile_requests_use_cache"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


@dataclasses.dataclass
class CompileStats:
    """Inside the block: how many programs were compiled or loaded (`count`: JAX's compile
    event fires for both) and their seconds; how many were looked up in the persistent cache
    (`cache_requests`) and found there (`cache_hits`: loaded, not compiled).
    `cache_entries_at_start`: what the cache folder held when the block began (0 with the
    cache off)."""

    count: int = 0
    seconds: float = 0.0
    cache_requests: int = 0
    cache_hits: int = 0
    cache_dir: str | None = None
    cache_entries_at_start: int = 0

    def record(self) -> dict:
        """The fields of a result's `timing` about compilation."""
        return {"programs": self.count, "compilations": self.count - self.cache_hits,
                "compile_s": self.seconds,
                "cache_hits": self.cache_hits, "cache_requests": self.cache_requests,
                "cache_dir": self.cache_dir,
                "cache_entries_at_start": self.cache_entries_at_start}


def active_cache_dir() -> str | None:
    """The persistent cache folder this process uses, or None when the cache is off."""
    if not jax.config.jax_enable_compilation_cache:
        return None
    return jax.config.jax_compilation_cache_dir


@contextlib.contextmanager
def count_compilations():
    """`with count_compilations() as stats: ...` counts XLA backend compilations in the block
    and the persistent cache's lookups and hits."""
    from ladsg_jax.compile_cache import entries

    folder = active_cache_dir()
    stats = CompileStats(cache_dir=folder, cache_entries_at_start=entries(folder) if folder else 0)

    def on_duration(event: str, duration: float, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            stats.count += 1
            stats.seconds += duration

    def on_event(event: str, **kwargs):
        if event == CACHE_REQUEST_EVENT:
            stats.cache_requests += 1
        elif event == CACHE_HIT_EVENT:
            stats.cache_hits += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    try:
        yield stats
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
        jax.monitoring.unregister_event_listener(on_event)
