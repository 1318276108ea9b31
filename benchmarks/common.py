"""Shared benchmark helpers: timing with median and IQR, run metadata, JSON output."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def time_it(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Wall-clock seconds of ``fn()``: median, IQR, min over ``repeats`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median": statistics.median(times), "iqr": q[2] - q[0], "min": min(times), "n": repeats}


def time_steady(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """:func:`time_it` by ``timeit``'s convention: garbage collected once before the runs
    and collection switched off while they run, never between them.

    A collection walks every Python object (0.1 s with torch imported) and leaves
    the caches cold and the thread pools asleep, which costs a short call up to
    half a millisecond. Use it where the other side of a comparison is timed the
    same way (the image peers in ``modalities/_image_peers.py`` use it too).
    """
    for _ in range(warmup):
        fn()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median": statistics.median(times), "iqr": q[2] - q[0], "min": min(times), "n": repeats}


def interleaved(
    fns: dict[str, Callable[[], Any]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    collect: bool = True,
) -> dict[str, dict[str, float]]:
    """Time several functions in alternation, so machine noise hits them alike.

    ``collect=True`` collects garbage before every call (each starts cold);
    ``collect=False`` follows :func:`time_steady`: one collection, none while
    the calls run back to back (warm caches and thread pools).
    """
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    enabled = gc.isenabled()
    if not collect:
        gc.collect()
        gc.disable()
    try:
        for _ in range(repeats):
            for k, f in fns.items():
                if collect:
                    gc.collect()
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
    out = {}
    for k, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        out[k] = {"median": statistics.median(ts), "iqr": q[2] - q[0], "min": min(ts), "n": repeats}
    return out


def run_metadata() -> dict[str, Any]:
    import perturbkit

    meta = {
        "perturbkit": perturbkit.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if "torch" in sys.modules:
        meta["torch"] = sys.modules["torch"].__version__
        meta["torch_threads"] = sys.modules["torch"].get_num_threads()
    return meta


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))
    return path
