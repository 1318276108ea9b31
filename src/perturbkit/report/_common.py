"""What the report needs to know about a run, derived from the public SweepResult API only."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from perturbkit.exceptions import ParameterError

__all__ = [
    "HIGHER_IS_BETTER",
    "PERCENT_METRICS",
    "RunInfo",
    "check_result",
    "degradation_metric",
    "fmt_magnitude",
    "fmt_value",
    "primary_metric",
]

# Metrics shown as percentages; drops and increases of them as percentage points.
PERCENT_METRICS = {
    "accuracy",
    "accuracy_drop",
    "flip_rate",
    "class_shift",
    "recall",
    "recall_drop",
    "predicted_share",
    "flip_rate_by_class",
    "transition_increase",
    "ece",
    "ece_increase",
}
HIGHER_IS_BETTER = {"accuracy", "recall"}

_PRIMARY = {
    ("classification", True): ("accuracy", "flip_rate", "accuracy_drop"),
    ("classification", False): ("flip_rate", "tv_distance", "js_distance"),
    ("regression", True): ("mse", "rmse", "mae", "deviation"),
    ("regression", False): ("deviation", "bias"),
}
_DEGRADATION = {
    ("classification", True): ("accuracy_drop", "flip_rate", "tv_distance"),
    ("classification", False): ("flip_rate", "tv_distance", "js_distance"),
    ("regression", True): ("mse_increase", "rmse_increase", "mae_increase", "deviation"),
    ("regression", False): ("deviation",),
}

METRIC_TITLES = {
    "accuracy": "Accuracy",
    "accuracy_drop": "Accuracy drop",
    "flip_rate": "Flip rate (predictions changed)",
    "confidence_drop": "Confidence drop",
    "tv_distance": "Total-variation distance",
    "js_distance": "Jensen-Shannon distance",
    "class_shift": "Class shift",
    "entropy": "Predictive entropy",
    "entropy_increase": "Entropy increase",
    "ece": "Expected calibration error",
    "ece_increase": "ECE increase",
    "log_loss": "Log loss",
    "log_loss_increase": "Log-loss increase",
    "brier": "Brier score",
    "brier_increase": "Brier increase",
    "recall_drop": "Recall drop",
    "mse": "Mean squared error",
    "rmse": "Root mean squared error",
    "mae": "Mean absolute error",
    "mse_increase": "MSE increase",
    "rmse_increase": "RMSE increase",
    "mae_increase": "MAE increase",
    "deviation": "Mean squared output deviation",
    "bias": "Mean output shift",
}


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.replace("_", " ").capitalize())


def check_result(result: Any, owner: str) -> None:
    """Fail with one line when ``result`` is not a SweepResult-like object."""
    if not (hasattr(result, "table") and hasattr(result, "meta") and hasattr(result, "summary")):
        raise ParameterError(
            f"The 'result' parameter of {owner} must be a SweepResult (from perturbkit.sweep "
            f"or perturbkit.load_run). Got {type(result).__name__} instead."
        )


def _task(result: Any) -> str:
    task = result.meta.get("task")
    if task in ("classification", "regression"):
        return str(task)
    metrics = set(result.table["metric"].unique())
    return "regression" if metrics & {"deviation", "mse"} else "classification"


def _has_labels(result: Any) -> bool:
    if "has_labels" in result.meta:
        return bool(result.meta["has_labels"])
    metrics = set(result.table["metric"].unique())
    return bool(metrics & {"accuracy", "accuracy_drop", "mse", "mse_increase", "log_loss"})


def _pick(result: Any, candidates: Sequence[str]) -> str:
    t = result.table
    present = list(dict.fromkeys(t.loc[t["group"] == "", "metric"]))
    for m in candidates:
        if m in present:
            return m
    if not present:
        raise ParameterError("The run has no global metric rows; nothing to report.")
    return present[0]


def primary_metric(result: Any) -> str:
    """accuracy / flip_rate (classification with / without labels), mse / deviation (regression)."""
    return _pick(result, _PRIMARY[(_task(result), _has_labels(result))])


def degradation_metric(result: Any) -> str:
    """accuracy_drop / flip_rate (classification), mse_increase / deviation (regression)."""
    return _pick(result, _DEGRADATION[(_task(result), _has_labels(result))])


def check_metric(result: Any, metric: str, owner: str) -> None:
    t = result.table
    have = list(dict.fromkeys(t.loc[t["group"] == "", "metric"]))
    if metric not in have:
        raise ParameterError(
            f"The 'metric' parameter of {owner} must be one of the run's metrics "
            f"({', '.join(have)}). Got {metric!r} instead."
        )


def fmt_magnitude(m: float, digits: int = 4) -> str:
    """A magnitude: 4 significant digits for grid points, fewer for interpolated ones."""
    return f"{float(m):.{digits}g}"


def fmt_value(v: float, metric: str, *, points: bool = False) -> str:
    """A metric value for people: percentages for rates, 4 significant digits otherwise."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    if metric in PERCENT_METRICS:
        if points or metric.endswith(("_drop", "_increase")):
            return f"{100 * v:+.1f} pts" if v else "0.0 pts"
        return f"{100 * v:.1f}%"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.3g}"
    return f"{v:.4g}"


class RunInfo:
    """Facts about one run that every part of the report shares."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.meta: dict[str, Any] = dict(result.meta)
        self.task = _task(result)
        self.has_labels = _has_labels(result)
        self.primary = primary_metric(result)
        self.degradation = degradation_metric(result)
        self.summary = result.summary()
        self.repeats = int(self.summary["n"].max()) if len(self.summary) else 0
        self.labels: list[str] = list(dict.fromkeys(self.summary["label"]))
        self.units = self._units()
        self.baseline: dict[str, float] = {
            k: float(v) for k, v in dict(self.meta.get("baseline") or {}).items()
        }

    def _units(self) -> dict[str, str]:
        """Perturbation label -> the unit of its magnitude (from meta["perturbations"])."""
        perts = list(self.meta.get("perturbations") or [])
        pairs = self.summary[["label", "perturbation", "params"]].drop_duplicates("label")
        out: dict[str, str] = {}
        for label, name, params in pairs.itertuples(index=False):
            try:
                p = json.loads(params) if params else {}
            except ValueError:
                p = None
            match = [d for d in perts if d.get("name") == name and d.get("params") == p]
            if not match:
                match = [d for d in perts if d.get("label") == label]
            if not match:
                match = [d for d in perts if d.get("name") == name]
            out[label] = str(match[0].get("unit") or "") if match else ""
        return out

    def metric(self, metric: str) -> pd.DataFrame:
        """The summary rows of one global metric, ordered by label then magnitude."""
        s = self.summary[self.summary["metric"] == metric]
        order = {lab: i for i, lab in enumerate(self.labels)}
        return (
            s.assign(_o=s["label"].map(order)).sort_values(["_o", "magnitude"]).drop(columns="_o")
        )

    def clean_value(self, metric: str) -> float:
        """The clean value of ``metric``: from meta["baseline"], else the magnitude-0 rows."""
        if metric in self.baseline:
            return self.baseline[metric]
        s = self.metric(metric)
        zero = s[s["magnitude"] == 0]
        return float(zero["mean"].mean()) if len(zero) else float("nan")

    def magnitudes(self, label: str | None = None) -> list[float]:
        s = self.summary if label is None else self.summary[self.summary["label"] == label]
        return sorted({float(m) for m in s["magnitude"]})

    def group_means(self, metric: str) -> pd.DataFrame:
        """Per (label, magnitude, group) mean over repeats of a grouped metric.

        A group absent from one repeat's rows counts as 0 there (the engine
        writes only non-zero error-mode rows), so means are not biased upward.
        """
        t = self.result.with_labels()
        t = t[(t["metric"] == metric) & (t["group"] != "")]
        cols = ["label", "magnitude", "group", "mean", "ci_low", "ci_high", "n"]
        if t.empty:
            return pd.DataFrame(columns=cols)
        n_rep = (
            self.result.with_labels()
            .groupby(["label", "magnitude"])["repeat"]
            .nunique()
            .rename("n")
            .reset_index()
        )
        wide = t.pivot_table(
            index=["label", "magnitude", "group"], columns="repeat", values="value", aggfunc="mean"
        )
        out = wide.reset_index().merge(n_rep, on=["label", "magnitude"], how="left")
        raw = out[list(wide.columns)].to_numpy(dtype=np.float64)
        if metric == "transition_increase":
            # Absent rows are zeros: every repeat of the cell counts.
            n = out["n"].to_numpy(dtype=np.float64)
            vals = np.nan_to_num(raw, nan=0.0)
            n_missing = n - vals.shape[1]
        else:
            n = np.sum(~np.isnan(raw), axis=1).astype(np.float64)
            vals = np.where(np.isnan(raw), 0.0, raw)
            n_missing = np.zeros(len(out))
        mean = np.full(len(out), np.nan)
        np.divide(vals.sum(axis=1), n, out=mean, where=n > 0)
        centred = np.where(
            np.isnan(raw) & (metric != "transition_increase"), 0.0, vals - mean[:, None]
        )
        ss = (centred**2).sum(axis=1) + n_missing * np.nan_to_num(mean) ** 2
        var = np.full(len(out), np.nan)
        np.divide(ss, n - 1, out=var, where=n > 1)
        from scipy import stats

        q = stats.t.ppf(0.975, np.maximum(n - 1, 1))
        half = np.full(len(out), np.nan)
        np.multiply(q, np.sqrt(var / np.maximum(n, 1)), out=half, where=n > 1)
        res = out[["label", "magnitude", "group"]].copy()
        res["mean"] = mean
        res["ci_low"] = mean - half
        res["ci_high"] = mean + half
        res["n"] = n
        return res
