"""SweepResult: the tidy table of a sweep plus its metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perturbkit.store.store import TABLE_COLUMNS as _STORE_COLUMNS

__all__ = ["TABLE_COLUMNS", "SweepResult", "perturbation_label"]

# The tidy table's columns are the store's, so a reloaded run equals the computed one.
TABLE_COLUMNS = list(_STORE_COLUMNS)


def _defaults(name: str) -> dict[str, Any]:
    import inspect

    from perturbkit._rng import canonical
    from perturbkit.perturbations.registry import get_class

    try:
        cls = get_class(name)
    except KeyError:
        return {}
    sig = inspect.signature(cls.__init__).parameters
    return {
        k: canonical(p.default) for k, p in sig.items() if p.default is not inspect.Parameter.empty
    }


def perturbation_label(name: str, params: str) -> str:
    """``name`` plus the parameters that differ from the class defaults."""
    try:
        p = json.loads(params) if params else {}
    except ValueError:
        return name
    defaults = _defaults(name)
    shown = {
        k: v
        for k, v in p.items()
        if v not in (None, [], {}) and not (k in defaults and defaults[k] == v)
    }
    if not shown:
        return name
    return name + "(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"


@dataclass(frozen=True)
class SweepResult:
    """The result of a sweep.

    Attributes:
        table: one row per cell and metric, columns ``perturbation``, ``version``,
            ``params`` (canonical JSON), ``magnitude``, ``repeat``, ``metric``,
            ``group`` (``""`` or e.g. ``"class=3"``) and ``value``.
        meta: run metadata: ``run_id``, ``root_seed``, versions, model and data
            fingerprints, environment, timings, the clean ``baseline`` metrics.
    """

    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str | None:
        return self.meta.get("run_id")

    @property
    def baseline(self) -> dict[str, float]:
        """Clean (unperturbed) metrics."""
        return dict(self.meta.get("baseline", {}))

    def to_pandas(self, *, groups: bool = True) -> pd.DataFrame:
        """The tidy table (a copy); ``groups=False`` keeps only the global rows."""
        t = self.table if groups else self.table[self.table["group"] == ""]
        return t.reset_index(drop=True).copy()

    def with_labels(self) -> pd.DataFrame:
        """The tidy table with a human ``label`` column (name plus set parameters)."""
        t = self.to_pandas()
        t.insert(
            0, "label", [perturbation_label(n, p) for n, p in zip(t["perturbation"], t["params"])]
        )
        return t

    def summary(self, *, confidence: float = 0.95, groups: bool = False) -> pd.DataFrame:
        """Mean and t-interval across repeats per (perturbation, magnitude, metric).

        With one repeat the interval is NaN: intervals come from repeats, not guesses.
        """
        from scipy import stats

        t = self.with_labels()
        if not groups:
            t = t[t["group"] == ""]
        keys = ["label", "perturbation", "version", "params", "magnitude", "metric", "group"]
        g = t.groupby(keys, sort=False, dropna=False)["value"]
        out = g.agg(mean="mean", std="std", n="count").reset_index()
        sem = out["std"] / np.sqrt(out["n"])
        q = stats.t.ppf(0.5 + confidence / 2, np.maximum(out["n"] - 1, 1))
        half = np.where(out["n"] > 1, q * sem, np.nan)
        out["ci_low"] = out["mean"] - half
        out["ci_high"] = out["mean"] + half
        return out

    def curve(self, metric: str) -> pd.DataFrame:
        """One metric as a wide table: rows magnitudes, columns perturbation labels (means)."""
        s = self.summary()
        s = s[s["metric"] == metric]
        return s.pivot_table(index="magnitude", columns="label", values="mean", sort=False)

    def thresholds(self, metric: str = "accuracy_drop", tolerance: float = 0.05) -> pd.DataFrame:
        """Smallest magnitude per perturbation at which ``metric`` reaches ``tolerance``."""
        from perturbkit.analysis.thresholds import find_thresholds

        return find_thresholds(self, metric=metric, tolerance=tolerance)

    def __repr__(self) -> str:
        n_p = self.table["perturbation"].nunique() if len(self.table) else 0
        return (
            f"<SweepResult run={self.run_id} perturbations={n_p} rows={len(self.table)} "
            f"task={self.meta.get('task')}>"
        )
