"""Helpers the benchmark scripts share: machine name, FLOP counting, one wall-clock timing."""
from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call (2 per multiply-add), from torch's own counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def time_once(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
