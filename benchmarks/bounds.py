"""Robustness bounds: cost against bare model evaluation, and sample efficiency per sampler.

1. Overhead. A curve of 10 noise levels on 10,000 points with 100 draws each
   (10 million perturbed rows) through ``robustness_curve`` against the bare
   limit: the same model's raw ``predict`` called on pre-built arrays of the
   same shapes, as many times (the clean pass included), and nothing else: no
   noise generation, no losses, no bounds. ``ratio = curve / bare``; target
   <= 1.2. The model is a scikit-learn MLPRegressor (64, 64) on 10 features.
   Timing: median of interleaved repeats (``common.interleaved``). On a
   shared machine the wall-clock ratio is noisy, so the overhead is also
   measured alone (the same curve with a model that returns zeros), giving
   ``1 + overhead / bare``.

2. Sample efficiency. For the same model on n = 10 and n = 100 fixed points
   at ε = 0.1 (dataset target, t bound at 95%), the relative half-width
   ``(upper − estimate) / estimate`` of the deviation and of the MSE against
   draws per point K (powers of two 4 … 4096, median over 20 seeds; 5 until
   the measure version 2, which left the medians noisy); the model
   evaluations ``n · K`` each sampler needs to reach a 5% (and a 1%)
   half-width, interpolated log-log between grid points. The dataset target
   is where the sampler matters: the population target adds the spread
   between points, which no sampler reduces. Target: QMC (and the orthogonal
   sampler) need half of plain Monte Carlo's evaluations or fewer. The
   orthogonal sampler's paired blocks hold 2d = 20 draws, so its grid is
   K = 4, 8, 10, 20 (two replicates of K/2 draws in unpaired blocks of up to
   d directions) and then whole paired blocks, K = 40, 80, …, 5120 (one
   replicate per block); the power-of-two grid is reported for it too
   (``orthogonal_pow2``: two replicates of K/2 draws, each ending in
   unpaired blocks).

   Two diagnostics come with it. *Honesty*: per sampler, the standard error
   the half-width implies (half-width / t quantile) against the real spread
   of the estimate over the seeds (RMS over seeds / standard deviation over
   seeds, median over the K grid); 1 means the half-width measures the
   error, neither more nor less. *One net*: what QMC would need if a row's K
   draws formed one net of K points (as they do for the population target)
   and its error could be known without replicates, from the spread over the
   seeds times the same t quantile. That is not an attainable half-width (one
   net per row has no honest variance estimate); it shows what the two
   half-size replicates of the dataset target cost.

3. Coverage (``--coverage REPS``): miss rates of the 90% bounds over REPS
   seeded repetitions where the truth is analytic (see :func:`coverage`).

Run:  .venv/bin/python benchmarks/bounds.py [--quick]
      .venv/bin/python benchmarks/bounds.py --coverage 2000
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, interleaved, run_metadata, write_json

from perturbkit.analysis.bounds import robustness_curve

N_POINTS = 10_000
N_DRAWS = 100
LEVELS = [round(0.1 * i, 1) for i in range(1, 11)]
BATCH = 65_536


def make_model(d: int = 10, seed: int = 0):
    from sklearn.datasets import make_friedman1
    from sklearn.neural_network import MLPRegressor

    X, y = make_friedman1(n_samples=2000, n_features=d, noise=0.5, random_state=seed)
    mlp = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=2000, tol=1e-5, random_state=seed)
    return mlp.fit(X, y), X


def bare(predict, X: np.ndarray, n_draws: int, n_levels: int) -> None:
    """The limit: the model calls of a curve on pre-built inputs of the same shapes."""
    n = X.shape[0]
    predict(X)  # the clean pass
    rows = max(1, BATCH // n_draws)
    A = np.repeat(X[:rows], n_draws, axis=0) + 0.01
    for _ in range(n_levels):
        for start in range(0, n, rows):
            r = min(rows, n - start)
            Ar = A[: r * n_draws]
            for s in range(0, Ar.shape[0], BATCH):
                predict(Ar[s : s + BATCH])


def overhead(quick: bool) -> dict:
    n = 2_000 if quick else N_POINTS
    model, Xtr = make_model()
    X = np.random.default_rng(1).uniform(0, 1, size=(n, Xtr.shape[1]))
    y = model.predict(X) + np.random.default_rng(2).normal(0, 0.5, size=n)

    def curve(sampler: str):
        return lambda: robustness_curve(
            model,
            X,
            y,
            levels=LEVELS,
            n_draws=N_DRAWS,
            sampler=sampler,
            seed=0,
            batch_size=BATCH,
        )

    def noop(A: np.ndarray) -> np.ndarray:
        return np.zeros(A.shape[0])

    fns = {
        "bare": lambda: bare(model.predict, X, N_DRAWS, len(LEVELS)),
        "qmc": curve("qmc"),
        "mc": curve("mc"),
        "antithetic": curve("antithetic"),
        "orthogonal": curve("orthogonal"),
        # Everything a curve adds, with a model that costs nothing: the overhead alone.
        "overhead_only": lambda: robustness_curve(
            noop, X, y, levels=LEVELS, n_draws=N_DRAWS, seed=0, batch_size=BATCH
        ),
    }
    t = interleaved(fns, repeats=2 if quick else 5, warmup=1)
    out = {"n_points": n, "n_draws": N_DRAWS, "levels": LEVELS, "timings": t, "ratios": {}}
    out["ratios_of_min"] = {}
    for k in ("qmc", "mc", "antithetic", "orthogonal"):
        r = t[k]["median"] / t["bare"]["median"]
        out["ratios"][k] = r
        out["ratios_of_min"][k] = t[k]["min"] / t["bare"]["min"]
        print(
            f"ratio {r:.2f}  curve({k}) / bare model evaluation  "
            f"({t[k]['median']:.2f} s vs {t['bare']['median']:.2f} s median; "
            f"ratio of minima {out['ratios_of_min'][k]:.2f}; target <= 1.2)"
        )
    extra = t["overhead_only"]["median"] / t["bare"]["median"]
    out["ratios"]["decomposed_qmc"] = 1 + extra
    print(
        f"ratio {1 + extra:.2f}  1 + (curve with a no-op model) / bare  "
        f"({t['overhead_only']['median']:.2f} s of overhead; less sensitive to machine load)"
    )
    return out


def efficiency(quick: bool) -> dict:
    """Evaluations to reach a target relative half-width, per sampler, metric and data size."""
    model, _ = make_model()
    grid = [2**k for k in range(2, 9 if quick else 13)]
    d = 10
    # The orthogonal sampler's paired blocks hold 2d draws. K = 4, 8, d: two replicates of
    # K/2 draws in unpaired blocks; K = 2d: two replicates of one unpaired block of d; from
    # K = 4d on, whole paired blocks, one replicate each.
    grid_orth = [4, 8, d] + [d * 2**k for k in range(1, 8 if quick else 12) if d * 2**k <= 6000]
    grids = {"orthogonal": grid_orth}
    seeds = range(5 if quick else 20)
    samplers = ("mc", "qmc", "antithetic", "orthogonal")
    extra = ("qmc_one_net", "orthogonal_pow2")
    metrics = ("deviation", "mse")
    out: dict = {
        "level": 0.1,
        "grid": grid,
        "grid_orthogonal": grid_orth,
        "seeds": len(seeds),
        "cases": [],
    }
    for n in (10, 100):
        X = np.random.default_rng(3).uniform(0, 1, size=(n, d))
        y = model.predict(X) + np.random.default_rng(4).normal(0, 0.5, size=n)
        hw: dict = {(m, smp): [] for m in metrics for smp in (*samplers, *extra)}
        honesty: dict = {(m, smp): [] for m in metrics for smp in (*samplers, *extra)}
        q_qmc: dict = {}
        for sampler in (*samplers, *extra):
            for K in grids.get(sampler, grid):
                vals: dict = {m: [] for m in metrics}
                est: dict = {m: [] for m in metrics}
                for s in seeds:
                    c = robustness_curve(
                        model,
                        X,
                        y,
                        levels=[0.1],
                        n_draws=K,
                        sampler=sampler.removesuffix("_one_net").removesuffix("_pow2"),
                        # The population target's QMC draws: one net of K points per row.
                        target="population" if sampler == "qmc_one_net" else "dataset",
                        seed=s,
                    )
                    t = c.table
                    q = float(special.stdtrit(n * (c.meta["n_replicates"] - 1), 0.95))
                    if sampler == "qmc":
                        q_qmc[K] = q
                    for m in metrics:
                        vals[m].append((t[m + "_upper"][0] - t[m][0]) / q)
                        est[m].append(t[m][0])
                for m in metrics:
                    e = np.asarray(est[m])
                    sd = float(e.std(ddof=1))
                    if sampler == "qmc_one_net":
                        hw[(m, sampler)].append(q_qmc[K] * sd / float(e.mean()))
                        continue
                    se = np.asarray(vals[m])
                    hw[(m, sampler)].append(float(np.median(se * q / e)))
                    honesty[(m, sampler)].append(float(np.sqrt(np.mean(se**2))) / sd)
        for m in metrics:
            for target in (0.05, 0.01):
                ev = {
                    smp: _evals_needed(grids.get(smp, grid), hw[(m, smp)], n, target)
                    for smp in samplers
                }
                one = _evals_needed(grid, hw[(m, "qmc_one_net")], n, target)
                pow2 = _evals_needed(grid, hw[(m, "orthogonal_pow2")], n, target)
                hon = {smp: float(np.median(honesty[(m, smp)])) for smp in samplers}
                case = {
                    "n_points": n,
                    "metric": m,
                    "half_width": target,
                    "evaluations": ev,
                    "ratio_to_mc": {smp: ev[smp] / ev["mc"] for smp in samplers},
                    "half_widths": {smp: hw[(m, smp)] for smp in samplers},
                    "honesty": hon,
                    "honesty_per_k": {smp: honesty[(m, smp)] for smp in samplers},
                    "qmc_one_net": {
                        "evaluations": one,
                        "ratio_to_mc": one / ev["mc"],
                        "half_widths": hw[(m, "qmc_one_net")],
                    },
                    "orthogonal_pow2": {
                        "evaluations": pow2,
                        "ratio_to_mc": pow2 / ev["mc"],
                        "half_widths": hw[(m, "orthogonal_pow2")],
                        "honesty": float(np.median(honesty[(m, "orthogonal_pow2")])),
                    },
                }
                out["cases"].append(case)
                r = case["ratio_to_mc"]
                print(
                    f"evaluations n={n:<4d} {m:<9} {target:.0%} half-width:  "
                    + "  ".join(f"{smp} {ev[smp]:>9.0f}" for smp in samplers)
                    + f"   qmc/mc {r['qmc']:.2f}  antithetic/mc {r['antithetic']:.2f}"
                    + f"  orthogonal/mc {r['orthogonal']:.2f}"
                    + f"   (one net: {one / ev['mc']:.2f}; orthogonal on the power-of-two grid: "
                    + f"{pow2 / ev['mc']:.2f}; honesty "
                    + " ".join(f"{smp} {hon[smp]:.2f}" for smp in samplers)
                    + ")"
                )
    for c in out["cases"]:
        if c["half_width"] == 0.05:
            for smp in ("qmc", "orthogonal"):
                print(
                    f"ratio {c['ratio_to_mc'][smp]:.2f}  {smp} / mc evaluations, {c['metric']}, "
                    f"n={c['n_points']}, 5% half-width (target <= 0.5)"
                )
    return out


def _evals_needed(grid: list[int], hw: list[float], n: int, target: float) -> float:
    """Evaluations n·K at which the half-width reaches ``target`` (log-log interpolation)."""
    for i, h in enumerate(hw):
        if h <= target:
            if i == 0:
                return float(n * grid[0])
            k0, k1, h0, h1 = grid[i - 1], grid[i], hw[i - 1], h
            if h0 <= 0 or h1 <= 0 or h0 == h1:
                return float(n * k1)
            slope = (math.log(h1) - math.log(h0)) / (math.log(k1) - math.log(k0))
            return float(n * math.exp(math.log(k0) + (math.log(target) - math.log(h0)) / slope))
    return float("inf")


def coverage(reps: int) -> dict:
    """Miss rates of the 90% bounds over ``reps`` seeded repetitions (truth analytic).

    The set-up of ``tests/analysis/test_bounds_coverage.py``: y = a·x + N(0, 0.7²)
    with x ~ N(0, I₄), scored by a misspecified linear model f(x) = w·x + b
    under Gaussian input noise of std 0.5 (absolute); 200 points per
    repetition. Population target: fresh data per repetition; dataset target:
    one fixed data set, fresh noise. A calibrated bound misses 10% of the time.
    """
    w, b, a, tau, sigma = (
        np.array([1.0, -2.0, 0.5, 1.5]),
        0.2,
        np.array([1.2, -1.5, 0, 1]),
        0.7,
        0.5,
    )

    def f(X):
        return X @ w + b

    def data(*key):
        g = np.random.default_rng(np.random.SeedSequence(7, spawn_key=key))
        X = g.normal(size=(200, 4))
        return X, X @ a + tau * g.normal(size=200)

    dev = sigma**2 * float(w @ w)
    pop = float(np.sum((w - a) ** 2) + b**2 + tau**2) + dev
    out: dict = {"reps": reps, "confidence": 0.9, "rows": []}
    cases = [
        ("population", "t", "mc", 8),
        ("population", "t", "qmc", 16),
        ("population", "t", "antithetic", 8),
        ("population", "t", "orthogonal", 6),
        ("population", "bootstrap", "mc", 8),
        ("dataset", "t", "mc", 8),
        ("dataset", "t", "qmc", 16),
        ("dataset", "t", "antithetic", 8),
        ("dataset", "t", "orthogonal", 8),
        ("dataset", "t", "orthogonal", 10),
    ]
    X0, y0 = data(10**6)
    ds_truth = float(np.mean((f(X0) - y0) ** 2)) + dev
    for target, method, sampler, K in cases:
        miss = np.zeros(3)
        for rep in range(reps):
            X, y = data(rep) if target == "population" else (X0, y0)
            t = robustness_curve(
                f,
                X,
                y,
                levels=[sigma],
                relative=False,
                sampler=sampler,
                n_draws=K,
                method=method,
                target=target,
                confidence=0.9,
                seed=rep,
                n_bootstrap=500,
            ).table
            truth = pop if target == "population" else ds_truth
            miss += [
                t.mse_upper[0] < truth,
                t.deviation_upper[0] < dev,
                t.mse_upper_minkowski[0] < truth,
            ]
        row = {
            "target": target,
            "method": method,
            "sampler": sampler,
            "n_draws": K,
            "miss_mse": miss[0] / reps,
            "miss_deviation": miss[1] / reps,
            "miss_minkowski": miss[2] / reps,
        }
        out["rows"].append(row)
        print(
            f"coverage {target:<10} {method:<9} {sampler:<10} miss rate: mse {row['miss_mse']:.3f}"
            f"  deviation {row['miss_deviation']:.3f}  minkowski {row['miss_minkowski']:.3f}"
            "  (nominal 0.100)"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument(
        "--part",
        choices=("all", "overhead", "efficiency"),
        default="all",
        help="run one part only (its results replace that part in the JSON)",
    )
    parser.add_argument(
        "--coverage",
        type=int,
        default=0,
        metavar="REPS",
        help="only the coverage study, with REPS repetitions (e.g. 2000)",
    )
    args = parser.parse_args()
    if args.coverage:
        cov = {"meta": run_metadata(), "coverage": coverage(args.coverage)}
        print(f"wrote {write_json('bounds_coverage', cov)}")
        return
    name = "bounds_quick" if args.quick else "bounds"
    path = RESULTS / f"{name}.json"
    payload = json.loads(path.read_text()) if args.part != "all" and path.is_file() else {}
    t0 = time.perf_counter()
    payload["meta"] = run_metadata()
    payload["quick"] = args.quick
    if args.part in ("all", "overhead"):
        payload["overhead"] = overhead(args.quick)
    if args.part in ("all", "efficiency"):
        payload["efficiency"] = efficiency(args.quick)
    payload["meta"]["wall_s"] = time.perf_counter() - t0
    print(f"wrote {write_json(name, payload)}")


if __name__ == "__main__":
    main()
