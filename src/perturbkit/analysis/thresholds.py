"""Threshold magnitudes: where a model breaks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from perturbkit._validation import Interval, check_param

__all__ = ["find_threshold", "find_thresholds"]


def find_threshold(magnitudes: Any, values: Any, tolerance: float) -> float:
    """Smallest magnitude at which ``values`` (degradation, higher = worse) reach ``tolerance``.

    Linear interpolation between the last grid point below the tolerance and
    the first at or above it; NaN when the grid never reaches it; 0 when the
    smallest magnitude already does (and the grid has no smaller point).
    """
    m = np.asarray(magnitudes, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(m)
    m, v = m[order], v[order]
    hit = np.flatnonzero(v >= tolerance)
    if hit.size == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0:
        return float(m[0])
    m0, m1, v0, v1 = m[i - 1], m[i], v[i - 1], v[i]
    if v1 == v0:
        return float(m1)
    return float(m0 + (tolerance - v0) * (m1 - m0) / (v1 - v0))


def find_thresholds(
    result: Any, *, metric: str = "accuracy_drop", tolerance: float = 0.05
) -> pd.DataFrame:
    """Per perturbation, the smallest magnitude at which the mean ``metric`` reaches ``tolerance``.

    ``metric`` should be a degradation (higher = worse): ``accuracy_drop``,
    ``flip_rate``, ``mse_increase``, ``deviation`` … Returns columns ``label``,
    ``perturbation``, ``metric``, ``tolerance``, ``threshold`` (NaN: never
    reached on the grid), ``max_magnitude`` (the grid's largest) and
    ``value_at_max``.
    """
    check_param("find_thresholds", "tolerance", tolerance, Interval(0, None, closed_low=False))
    s = result.summary()
    s = s[s["metric"] == metric]
    if s.empty:
        from perturbkit.exceptions import ParameterError

        have = sorted(result.table["metric"].unique())
        raise ParameterError(
            f"The 'metric' parameter of find_thresholds must be one of the run's metrics "
            f"({', '.join(have)}). Got {metric!r} instead."
        )
    rows = []
    for label, g in s.groupby("label", sort=False):
        g = g.sort_values("magnitude")
        rows.append(
            {
                "label": label,
                "perturbation": g["perturbation"].iloc[0],
                "metric": metric,
                "tolerance": float(tolerance),
                "threshold": find_threshold(g["magnitude"], g["mean"], tolerance),
                "max_magnitude": float(g["magnitude"].max()),
                "value_at_max": float(g["mean"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows)
