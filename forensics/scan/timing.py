"""Seconds spent per stage of the scan (decode, detect, track, align, score, temporal, ...): the benchmark's
breakdown and each file's custody record come from the same counters."""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Accumulates wall-clock seconds per named stage; `stage()` blocks may nest only across different names."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def add(self, other: "StageTimer") -> None:
        for name, s in other.seconds.items():
            self.seconds[name] += s

    def to_dict(self, digits: int = 4) -> dict[str, float]:
        return {k: round(v, digits) for k, v in sorted(self.seconds.items())}
