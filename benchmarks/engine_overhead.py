"""Engine overhead: a full ``perturbkit.sweep`` (store and metrics on) against the bare limit.

The bare limit is a hand-written numpy loop that generates the same
perturbations (the same seeded draws per logical block, shared across
magnitudes, as the engine does) and calls the same model on the same
batches, and does nothing else: no metrics, no store, no checks. The ratio
``sweep / bare`` is the price of everything perturbkit adds. Target: <= 1.10.

Every timed run happens in a fresh Python process, bare and sweep in
alternation. (Timed in one process, the two sides disturbed each other: the
order and the allocator's and thread pools' state changed the model's own
speed by up to 3x, in either direction.) Each process builds the data and the
model from fixed seeds, runs once to warm up, then once timed.

It also checks that both sides feed the model bit-identical inputs, and
measures peak traced memory (tracemalloc, numpy buffers included) for a grid
and for one 10x larger: memory must not grow with the grid.

Run:  .venv/bin/python benchmarks/engine_overhead.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_metadata, write_json

import perturbkit as pk
from perturbkit._rng import BLOCK_ROWS, block_rng

MAGNITUDES = [0.05, 0.1, 0.2, 0.5, 1.0]
REPEATS = 3
BATCH = 8192
# The three additive noise families, with their standardised draws written out by hand.
NOISES = {
    "gaussian_noise": lambda rng, shape: rng.standard_normal(shape),
    "uniform_noise": lambda rng, shape: rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), shape),
    "laplace_noise": lambda rng, shape: rng.laplace(0.0, 1.0 / np.sqrt(2.0), shape),
}
CASES = {
    "noop": "a model that costs nothing (the engine's own cost)",
    "logistic": "scikit-learn LogisticRegression (a very cheap model)",
    "hgb": "scikit-learn HistGradientBoostingClassifier(max_iter=50)",
    "torch": "torch MLP 50-256-256-3",
}


def make_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=d // 2,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


def make_model(case: str, X: np.ndarray, y: np.ndarray):
    """(predict function for the bare loop, model for the sweep)."""
    if case == "noop":

        def noop(a: np.ndarray) -> np.ndarray:
            return np.full((a.shape[0], 3), 1.0 / 3.0)

        return noop, pk.wrap(noop, task="classification")
    if case == "logistic":
        from sklearn.linear_model import LogisticRegression

        m = LogisticRegression(max_iter=300).fit(X[:20000], y[:20000])
        return m.predict_proba, m
    if case == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        m = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X[:20000], y[:20000])
        return m.predict_proba, m
    import torch

    d = X.shape[1]
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        net = torch.nn.Sequential(
            torch.nn.Linear(d, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 3),
        )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    net.eval()

    def predict(Xb: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = net(torch.from_numpy(Xb.astype(np.float32)))
            return torch.softmax(logits, dim=1).double().numpy()

    return predict, pk.wrap(net, task="classification")


def bare_loop(predict, X: np.ndarray, root: int) -> None:
    """The limit: same draws, same magnitudes, same model calls; nothing else."""
    n = X.shape[0]
    scale = X.std(axis=0)
    chunk = max(BLOCK_ROWS, (BATCH // BLOCK_ROWS) * BLOCK_ROWS)
    for s in range(0, n, chunk):  # the clean pass
        predict(X[s : s + chunk])
    for name, draw in NOISES.items():
        key = pk.perturbations.get(name).key
        for r in range(REPEATS):
            for s in range(0, n, chunk):
                Xc = X[s : s + chunk]
                z = np.concatenate(
                    [
                        draw(
                            block_rng(root, key, r, (s + o) // BLOCK_ROWS),
                            Xc[o : o + BLOCK_ROWS].shape,
                        )
                        for o in range(0, Xc.shape[0], BLOCK_ROWS)
                    ]
                )
                for m in MAGNITUDES:
                    predict(Xc + (m * scale) * z)


def full_sweep(model, X, y, url: str) -> pk.SweepResult:
    return pk.sweep(
        model,
        X,
        y,
        perturbations=list(NOISES),
        magnitudes=MAGNITUDES,
        repeats=REPEATS,
        seed=123,
        batch_size=BATCH,
        store=url,
        progress=False,
    )


def worker(case: str, side: str, n: int, d: int, threads: int) -> float:
    """One timed run in this (fresh) process: warm up once, then time once."""
    _limit_threads(threads)
    X, y = make_data(n, d)
    predict, model = make_model(case, X, y)
    with tempfile.TemporaryDirectory() as tmp:
        urls = iter(f"sqlite:///{Path(tmp) / f'run{i}.db'}" for i in range(2))
        run = (
            (lambda: bare_loop(predict, X, 123))
            if side == "bare"
            else (lambda: full_sweep(model, X, y, next(urls)))
        )
        run()
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0


def _limit_threads(threads: int) -> None:
    if threads <= 0:
        return
    import sklearn.ensemble  # noqa: F401 - load the OpenMP runtime so that it can be limited
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    torch.set_num_threads(threads)


def time_case(case: str, n: int, d: int, reps: int, threads: int) -> dict:
    times: dict[str, list[float]] = {"bare": [], "sweep": []}
    for _ in range(reps):
        for side in ("bare", "sweep"):
            out = subprocess.run(
                [sys.executable, __file__, "--worker", case, side, str(n), str(d), str(threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            times[side].append(float(out.stdout.strip().splitlines()[-1]))
    summary = {}
    for side, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        summary[side] = {"median": statistics.median(ts), "iqr": q[2] - q[0], "runs": ts}
    ratio = summary["sweep"]["median"] / summary["bare"]["median"]
    cells = len(NOISES) * len(MAGNITUDES) * REPEATS
    return {
        "case": f"{CASES[case]}, {n} x {d}",
        "bare_seconds": summary["bare"],
        "sweep_seconds": summary["sweep"],
        "ratio": ratio,
        "added_ms_per_cell": 1000
        * (summary["sweep"]["median"] - summary["bare"]["median"])
        / cells,
    }


def check_same_inputs(n: int, d: int) -> bool:
    """The bare loop and the engine feed the model bit-identical perturbed batches."""
    from sklearn.linear_model import LogisticRegression

    X, y = make_data(n, d)
    model = LogisticRegression(max_iter=300).fit(X, y)
    seen_bare: list[np.ndarray] = []
    seen_sweep: list[np.ndarray] = []

    def bare_predict(a: np.ndarray) -> np.ndarray:
        seen_bare.append(a)
        return model.predict_proba(a)

    wrapped = pk.wrap(model)
    inner = wrapped._predict

    def sweep_predict(a: np.ndarray) -> np.ndarray:
        seen_sweep.append(a)
        return inner(a)

    wrapped._predict = sweep_predict  # type: ignore[method-assign]
    bare_loop(bare_predict, X, 123)
    pk.sweep(
        wrapped,
        X,
        y,
        perturbations=list(NOISES),
        magnitudes=MAGNITUDES,
        repeats=REPEATS,
        seed=123,
        batch_size=BATCH,
        progress=False,
    )
    return len(seen_bare) == len(seen_sweep) and all(
        np.array_equal(a, b) for a, b in zip(seen_bare, seen_sweep)
    )


def case_memory(n: int, d: int, tmp: Path) -> dict:
    from sklearn.linear_model import LogisticRegression

    X, y = make_data(n, d)
    model = LogisticRegression(max_iter=300).fit(X, y)
    out: dict = {}
    grids = [("grid", MAGNITUDES), ("grid_x10", list(np.linspace(0.01, 1.0, 10 * len(MAGNITUDES))))]
    for label, mags in grids:
        url = f"sqlite:///{tmp / f'mem_{label}.db'}"
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        res = pk.sweep(
            model,
            X,
            y,
            perturbations=list(NOISES),
            magnitudes=mags,
            repeats=REPEATS,
            seed=1,
            store=url,
            progress=False,
        )
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        out[label] = {
            "cells": len(NOISES) * len(mags) * REPEATS,
            "peak_mb": peak / 2**20,
            "table_rows": len(res.table),
        }
    out["data_mb"] = X.nbytes / 2**20
    out["growth"] = out["grid_x10"]["peak_mb"] / out["grid"]["peak_mb"]
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        case, side, n, d, threads = sys.argv[2:7]
        print(worker(case, side, int(n), int(d), int(threads)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20,000 rows, 2 runs a side (a smoke run)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP/torch threads for both sides (default 1: steadier timings; 0: leave)",
    )
    args = ap.parse_args()
    n, d, reps = (20_000, 50, 2) if args.quick else (100_000, 50, 5)
    results: dict = {
        "n_rows": n,
        "n_features": d,
        "magnitudes": MAGNITUDES,
        "repeats": REPEATS,
        "perturbations": list(NOISES),
        "threads": args.threads,
        "runs_per_side": reps,
        "same_inputs": check_same_inputs(5_000, d),
        "cases": [],
    }
    assert results["same_inputs"], "the engine and the bare loop fed the model different inputs"
    for case in args.cases.split(","):
        results["cases"].append(time_case(case, n, d, reps, args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        results["memory"] = case_memory(n // 5, d, Path(tmp))
    results["meta"] = run_metadata()
    if not args.quick:
        write_json("engine_overhead", results)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for c in results["cases"]:
        b, s = c["bare_seconds"], c["sweep_seconds"]
        print(
            f"{c['case']}: bare {b['median']:.3f}s (IQR {b['iqr']:.3f}), "
            f"sweep {s['median']:.3f}s (IQR {s['iqr']:.3f}), "
            f"+{c['added_ms_per_cell']:.1f} ms per cell  ratio {c['ratio']:.2f}"
        )
    print("engine and bare loop fed the model bit-identical inputs:", results["same_inputs"])
    m = results["memory"]
    print(
        f"peak memory, grid of {m['grid']['cells']} cells: {m['grid']['peak_mb']:.1f} MB; "
        f"grid of {m['grid_x10']['cells']} cells: {m['grid_x10']['peak_mb']:.1f} MB "
        f"(x{m['growth']:.2f}; data itself {m['data_mb']:.1f} MB)"
    )


if __name__ == "__main__":
    main()
