"""Time spent per stage of the scan (decode, detect, track, align, score, temporal, ...): the benchmark's
breakdown and each file's custody record come from the same counters.

Each stage records wall-clock seconds and the CPU seconds of the thread that ran it (`time.thread_time`): on a
shared machine the wall clock includes waiting for other jobs, the thread's CPU time does not.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Accumulates seconds per named stage; safe to use from the scan's two threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, used = time.perf_counter() - start, time.thread_time() - cpu
            with self._lock:
                self.seconds[name] += wall
                self.cpu_seconds[name] += used

    def to_dict(self, digits: int = 4) -> dict[str, float]:
        return {k: round(v, digits) for k, v in sorted(self.seconds.items())}
