"""Robustness curves with confidence bounds for MLP regressors on four real data sets.

The data sets ship inside packages (nothing is downloaded): scikit-learn's
diabetes, and statsmodels' star98 (share of students above the median
maths score, by school district), grunfeld (log investment of US firms) and
fair (log affairs count, survey). Each gets a small MLP trained on 70% of its
rows; the curves are computed on the other 30%: the MSE under Gaussian input
noise of level ε (in training-set standard deviations of each feature),
normalised by Var(y), with its 95% upper bound (population target: the
bound covers new data from the same distribution).

    python examples/robustness_curves.py --out DIR            # figure + CSV + JSON
    python examples/robustness_curves.py --out DIR --tightness  # + bound / truth table

Needs statsmodels (pip install statsmodels). With ``--tightness`` it also
prints bound / truth for the dataset target, the truth being the same
measure with 100x the noise draws, and bound / estimate for the population
target (whose truth is unknown on real data).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from perturbkit.analysis.bounds import plot_robustness_curves, robustness_curve

LEVELS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
SEED = 0


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Four real regression data sets bundled with scikit-learn and statsmodels."""
    try:
        import statsmodels.datasets as smd
    except ImportError:  # pragma: no cover - the message is the point
        sys.exit(
            "This example needs statsmodels for its bundled data sets: pip install statsmodels"
        )
    out = {"diabetes": load_diabetes(return_X_y=True)}
    star = smd.star98.load_pandas().data
    out["star98"] = (
        star.drop(columns=["NABOVE", "NBELOW"]).to_numpy(dtype=float),
        (star["NABOVE"] / (star["NABOVE"] + star["NBELOW"])).to_numpy(dtype=float),
    )
    grun = smd.grunfeld.load_pandas().data
    out["grunfeld"] = (
        np.log(grun[["value", "capital"]].to_numpy(dtype=float)),
        np.log1p(grun["invest"].to_numpy(dtype=float)),
    )
    fair = smd.fair.load_pandas().data
    out["fair"] = (
        fair.drop(columns=["affairs"]).to_numpy(dtype=float),
        np.log1p(fair["affairs"].to_numpy(dtype=float)),
    )
    return out


def train(X: np.ndarray, y: np.ndarray) -> tuple[object, ...]:
    """A small MLP on standardised inputs and target.

    Returns (model, X_test, y_test, training feature stds, y_train).
    """
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=SEED)
    mlp = MLPRegressor(
        hidden_layer_sizes=(32,), alpha=3.0, max_iter=5000, tol=1e-5, random_state=SEED
    )
    model = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), mlp), transformer=StandardScaler()
    ).fit(X_tr, y_tr)
    return model, X_te, y_te, X_tr.std(axis=0), y_tr


class Clipped:
    """The model with its outputs clipped to the training label range widened by 25% each side.

    The distribution-free bounds need a stated range B for every squared
    error: assuming the labels also lie in that interval, B = (1.5 · range)².
    """

    def __init__(self, model: object, y_train: np.ndarray) -> None:
        lo, hi = float(y_train.min()), float(y_train.max())
        self.model, self.lo, self.hi = model, lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo)
        self.value_range = (self.hi - self.lo) ** 2

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.clip(self.model.predict(X), self.lo, self.hi)


def tightness(name: str, model: Clipped, X: np.ndarray, y: np.ndarray, scale: np.ndarray) -> list:
    """Bound / truth (dataset target, truth with 100x draws) and bound / estimate (population)."""
    rows = []
    for level in (0.1, 0.5):
        common = {"levels": [level], "scale": scale}
        truth = robustness_curve(
            model, X, y, **common, sampler="mc", n_draws=6400, target="dataset", seed=SEED + 1
        ).table.mse[0]
        for sampler in ("qmc", "mc", "antithetic", "orthogonal"):
            t = robustness_curve(
                model, X, y, **common, sampler=sampler, target="dataset", seed=SEED
            ).table
            rows.append(
                (name, len(y), level, "dataset", "t", sampler, t.mse[0], t.mse_upper[0], truth)
            )
        t = robustness_curve(  # distribution-free, finite draws only
            model,
            X,
            y,
            **common,
            method="hoeffding",
            value_range=model.value_range,
            target="dataset",
            seed=SEED,
        ).table
        rows.append(
            (name, len(y), level, "dataset", "hoeffding", "qmc", t.mse[0], t.mse_upper[0], truth)
        )
        for method in ("t", "bootstrap", "bernstein", "hoeffding"):
            t = robustness_curve(
                model, X, y, **common, method=method, value_range=model.value_range, seed=SEED
            ).table
            rows.append(  # the population truth is unknown on real data
                (name, len(y), level, "population", method, "qmc", t.mse[0], t.mse_upper[0], np.nan)
            )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--out", default=".", help="folder for the figure, CSV and JSON")
    parser.add_argument("--tightness", action="store_true", help="also print bound / truth")
    args, _ = parser.parse_known_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    curves, summary, tight = {}, {}, []
    for name, (X, y) in datasets().items():
        model, X_te, y_te, scale, y_tr = train(X, y)
        c = robustness_curve(
            model, X_te, y_te, levels=LEVELS, scale=scale, n_draws=64, seed=SEED, label=name
        )
        curves[f"{name} (n={len(y_te)}, d={X.shape[1]})"] = c
        t = c.to_pandas()
        summary[name] = {
            "n_test": len(y_te),
            "n_features": X.shape[1],
            "clean_r2": float(1 - t["mse_normalized"][0]),
            "auc_mse_upper_normalized": c.auc(normalize=True),
            "radius_bound_below_var_y": c.radius(1.0),
            "mse_upper_normalized_at_0.5": float(t.set_index("level")["mse_upper_normalized"][0.5]),
        }
        if args.tightness:
            tight += tightness(name, Clipped(model, y_tr), X_te, y_te, scale)

    fig = plot_robustness_curves(
        curves, title="MLP regressors: MSE / Var(y) under Gaussian input noise (95% bound dashed)"
    )
    fig.savefig(out / "robustness_curves.png", dpi=120)
    table = pd.concat(
        [c.to_pandas().assign(dataset=c.label) for c in curves.values()], ignore_index=True
    )
    table.to_csv(out / "robustness_curves.csv", index=False)
    (out / "robustness_curves.json").write_text(json.dumps(summary, indent=2))
    print(f"{'data set':<10} {'n':>5} {'R2':>6} {'AUC':>6} {'radius':>7}  MSE/Var(y) bound at 0.5")
    for name, s in summary.items():
        print(
            f"{name:<10} {s['n_test']:>5} {s['clean_r2']:>6.3f} "
            f"{s['auc_mse_upper_normalized']:>6.3f} {s['radius_bound_below_var_y']:>7.2f}  "
            f"{s['mse_upper_normalized_at_0.5']:.3f}"
        )
    if tight:
        cols = ["dataset", "n", "level", "target", "method", "sampler", "estimate", "bound"]
        df = pd.DataFrame(tight, columns=[*cols, "truth"])
        df["bound/truth"] = df["bound"] / df["truth"]
        df["bound/estimate"] = df["bound"] / df["estimate"]
        df.to_csv(out / "tightness.csv", index=False)
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"figure: {out / 'robustness_curves.png'}")
    return summary


if __name__ == "__main__":
    main()
