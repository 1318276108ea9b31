"""Engine overhead: a full ``perturbkit.sweep`` (store and metrics on) against the bare limit.

The bare limit is a hand-written numpy loop that generates the same
perturbations (the same seeded draws per logical block, shared across
magnitudes, as the engine does) and calls the same model on the same
batches, and does nothing else: no metrics, no store, no checks. The ratio
``sweep / bare`` is the price of everything perturbkit adds. Target: <= 1.10.

It also measures peak traced memory (tracemalloc: numpy buffers included) for
a grid and for a grid 10x larger: memory must not grow with the grid.

Run:  .venv/bin/python benchmarks/engine_overhead.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, run_metadata, write_json

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


def floor_seconds(predict, X: np.ndarray, root: int) -> dict[str, float]:
    """The bare limit from its two parts, each timed on its own.

    ``generate``: the bare loop with a no-op model (the draws and the arithmetic).
    ``model``: the model called back to back on the perturbed batches (those of
    repeat 0, held in memory, timed once per repeat: a repeat differs only in the
    random values).
    """
    n = X.shape[0]
    chunk = max(BLOCK_ROWS, (BATCH // BLOCK_ROWS) * BLOCK_ROWS)
    t0 = time.perf_counter()
    bare_loop(lambda a: None, X, root)
    generate = time.perf_counter() - t0
    scale = X.std(axis=0)
    model = 0.0
    t0 = time.perf_counter()
    for s in range(0, n, chunk):
        predict(X[s : s + chunk])
    model += time.perf_counter() - t0
    for name, draw in NOISES.items():
        key = pk.perturbations.get(name).key
        batches = []
        for s in range(0, n, chunk):
            Xc = X[s : s + chunk]
            z = np.concatenate(
                [
                    draw(
                        block_rng(root, key, 0, (s + o) // BLOCK_ROWS), Xc[o : o + BLOCK_ROWS].shape
                    )
                    for o in range(0, Xc.shape[0], BLOCK_ROWS)
                ]
            )
            batches += [Xc + (m * scale) * z for m in MAGNITUDES]
        t0 = time.perf_counter()
        for b in batches:
            predict(b)
        model += REPEATS * (time.perf_counter() - t0)
        del batches
    return {"generate": generate, "model": model, "total": generate + model}


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


def full_sweep(model, X, y, store_dir: Path, counter: list[int]) -> pk.SweepResult:
    counter[0] += 1
    url = f"sqlite:///{store_dir / f'bench{counter[0]}.db'}"
    return pk.sweep(
        model,
        X,
        y,
        perturbations=["gaussian_noise"],
        magnitudes=MAGNITUDES,
        repeats=REPEATS,
        seed=123,
        batch_size=BATCH,
        store=url,
        progress=False,
    )


def case_sklearn(kind: str, n: int, d: int, repeats: int, tmp: Path) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = make_data(n, d)
    if kind == "logistic":
        model = LogisticRegression(max_iter=300).fit(X[:20000], y[:20000])
        name = "scikit-learn LogisticRegression (the cheapest model: worst case)"
    else:
        model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(
            X[:20000], y[:20000]
        )
        name = "scikit-learn HistGradientBoostingClassifier(max_iter=50)"
    counter = [0]
    res = full_sweep(model, X, y, tmp, counter)
    assert res.meta["root_seed"] == 123
    times = interleaved(
        {
            "bare": lambda: bare_loop(model.predict_proba, X, 123),
            "sweep": lambda: full_sweep(model, X, y, tmp, counter),
        },
        repeats=repeats,
    )
    floors = [floor_seconds(model.predict_proba, X, 123) for _ in range(3)]
    return {"case": f"{name}, {n} x {d}", **_ratio(times, floors)}


def case_noop(n: int, d: int, repeats: int, tmp: Path) -> dict:
    """A model that costs nothing: what is left is the engine's own cost per cell."""
    X, y = make_data(n, d)

    def noop(a: np.ndarray) -> np.ndarray:
        return np.full((a.shape[0], 3), 1.0 / 3.0)

    model = pk.wrap(noop, task="classification")
    counter = [0]
    times = interleaved(
        {
            "bare": lambda: bare_loop(noop, X, 123),
            "sweep": lambda: full_sweep(model, X, y, tmp, counter),
        },
        repeats=repeats,
    )
    floors = [{"generate": times["bare"]["median"], "model": 0.0, "total": times["bare"]["median"]}]
    out = _ratio(times, floors)
    cells = len(NOISES) * len(MAGNITUDES) * REPEATS
    out["engine_ms_per_cell"] = 1000 * (times["sweep"]["median"] - times["bare"]["median"]) / cells
    return {"case": f"a model that costs nothing (the engine's own cost), {n} x {d}", **out}


def case_torch(n: int, d: int, repeats: int, tmp: Path) -> dict:
    import torch

    X, y = make_data(n, d)
    gen = torch.Generator().manual_seed(0)
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

    model = pk.wrap(net, task="classification")
    counter = [0]
    full_sweep(model, X, y, tmp, counter)
    times = interleaved(
        {
            "bare": lambda: bare_loop(predict, X, 123),
            "sweep": lambda: full_sweep(model, X, y, tmp, counter),
        },
        repeats=repeats,
    )
    floors = [floor_seconds(predict, X, 123) for _ in range(3)]
    return {"case": f"torch MLP {d}-256-256-3, {n} x {d}", **_ratio(times, floors)}


def _ratio(times: dict, floors: list[dict[str, float]]) -> dict:
    floor = float(np.median([f["total"] for f in floors]))
    return {
        "naive_loop_seconds": times["bare"],
        "sweep_seconds": times["sweep"],
        "floor_seconds": {
            "generate": float(np.median([f["generate"] for f in floors])),
            "model": float(np.median([f["model"] for f in floors])),
            "total": floor,
        },
        "ratio": times["sweep"]["median"] / floor,
        "ratio_to_naive_loop": times["sweep"]["median"] / times["bare"]["median"],
    }


def case_memory(n: int, d: int, tmp: Path) -> dict:
    from sklearn.linear_model import LogisticRegression

    X, y = make_data(n, d)
    model = LogisticRegression(max_iter=300).fit(X, y)
    out = {}
    for label, mags in [
        ("grid", MAGNITUDES),
        ("grid_x10", list(np.linspace(0.01, 1.0, 10 * len(MAGNITUDES)))),
    ]:
        url = f"sqlite:///{tmp / f'mem_{label}.db'}"
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        res = pk.sweep(
            model,
            X,
            y,
            perturbations=["gaussian_noise"],
            magnitudes=mags,
            repeats=REPEATS,
            seed=1,
            store=url,
            progress=False,
        )
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        out[label] = {
            "cells": len(mags) * REPEATS,
            "peak_mb": peak / 2**20,
            "table_rows": len(res.table),
        }
    out["data_mb"] = X.nbytes / 2**20
    out["growth"] = out["grid_x10"]["peak_mb"] / out["grid"]["peak_mb"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="smaller data and fewer repeats (smoke run)"
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP/torch threads for both sides (default 1: steadier timings; 0: leave)",
    )
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    if args.threads > 0:
        # Load the libraries first, so that their thread pools (BLAS, OpenMP) exist to limit.
        import sklearn.ensemble  # noqa: F401
        import torch

        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)
    n, d, reps = (20_000, 50, 3) if args.quick else (100_000, 50, 5)
    results = {
        "meta": run_metadata(),
        "n_rows": n,
        "n_features": d,
        "magnitudes": MAGNITUDES,
        "repeats": REPEATS,
        "threads": args.threads,
        "cases": [],
        "same_inputs": check_same_inputs(5_000, d),
    }
    assert results["same_inputs"], "the engine and the bare loop fed the model different inputs"
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        results["cases"].append(case_noop(n, d, reps, t))
        results["cases"].append(case_sklearn("logistic", n, d, reps, t))
        results["cases"].append(case_sklearn("hgb", n, d, reps, t))
        if not args.skip_torch:
            results["cases"].append(case_torch(n, d, reps, t))
        results["memory"] = case_memory(n // 5, d, t)
    results["meta"] = run_metadata()
    if not args.quick:
        write_json("engine_overhead", results)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for c in results["cases"]:
        f, sw, nv = c["floor_seconds"], c["sweep_seconds"], c["naive_loop_seconds"]
        print(
            f"{c['case']}: sweep {sw['median']:.3f}s (IQR {sw['iqr']:.3f}); bare limit "
            f"{f['total']:.3f}s (draws+arithmetic {f['generate']:.3f}s + model calls "
            f"{f['model']:.3f}s)  ratio {c['ratio']:.2f}; a naive loop doing both took "
            f"{nv['median']:.3f}s"
        )
    noop = results["cases"][0]
    print(
        f"the engine's own cost (metrics, store, checks): {noop['engine_ms_per_cell']:.1f} ms "
        f"per cell of {n} rows"
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
