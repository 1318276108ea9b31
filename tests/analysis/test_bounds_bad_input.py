"""Bad input to the bounds API: one clear line each, naming the parameter and the value."""

from __future__ import annotations

import numpy as np
import pytest
from _bounds_helpers import Linear

from perturbkit.analysis.bounds import clopper_pearson, mean_upper_bound, robustness_curve
from perturbkit.exceptions import DataError, ParameterError

X, Y = Linear.data(20, 0)


def _call(**kw):
    args = {"levels": [0.1], "seed": 0, **kw}
    return robustness_curve(Linear.f, args.pop("X", X), args.pop("y", Y), **args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"levels": [-0.1]},
            ParameterError,
            r"^The 'levels' parameter of robustness_curve must "
            r"be a non-empty list of finite floats >= 0\. Got \[-0\.1\] instead\.$",
        ),
        (
            {"levels": [0.1, float("nan")]},
            ParameterError,
            r"'levels' parameter .* Got \[0\.1, nan\]",
        ),
        ({"levels": []}, ParameterError, r"'levels' parameter"),
        ({"levels": [0.1, 0.1]}, ParameterError, r"must not repeat a level"),
        ({"levels": "abc"}, ParameterError, r"'levels' parameter"),
        (
            {"confidence": 1.0},
            ParameterError,
            r"^The 'confidence' parameter of robustness_curve "
            r"must be a float in the range \(0, 1\)\. Got 1\.0 instead\.$",
        ),
        ({"confidence": 0}, ParameterError, r"'confidence' parameter .* Got 0 instead"),
        ({"confidence": float("nan")}, ParameterError, r"'confidence' parameter"),
        ({"method": "wilson"}, ParameterError, r"'method' parameter .* Got 'wilson'"),
        ({"sampler": "sobol"}, ParameterError, r"'sampler' parameter"),
        ({"noise": "cauchy"}, ParameterError, r"'noise' parameter"),
        ({"target": "sample"}, ParameterError, r"'target' parameter"),
        ({"n_draws": 7}, ParameterError, r"'n_draws' parameter .* even for sampler='qmc'"),
        ({"n_draws": 0}, ParameterError, r"'n_draws' parameter"),
        (
            {"n_draws": 2, "sampler": "antithetic", "target": "dataset"},
            ParameterError,
            r"at least 2 independent replicates",
        ),
        (
            {"sampler": "orthogonal", "noise": "uniform"},
            ParameterError,
            r"^The 'sampler' parameter of robustness_curve must be 'qmc', 'mc' or 'antithetic' "
            r"for noise='uniform'; 'orthogonal' works only with noise='gaussian'\. "
            r"Got 'orthogonal' instead\.$",
        ),
        (
            {"n_draws": 7, "sampler": "orthogonal", "target": "dataset"},
            ParameterError,
            r"'n_draws' parameter .* must be even with sampler='orthogonal' and "
            r"target='dataset'",
        ),
        (
            {"target": "dataset", "method": "bootstrap"},
            ParameterError,
            r"'method' parameter of robustness_curve must be 't' or 'hoeffding' when "
            r"target='dataset'",
        ),
        ({"method": "hoeffding"}, ParameterError, r"'value_range' parameter .* must be given"),
        ({"method": "hoeffding", "value_range": 1e-3}, DataError, r"outside \[0, value_range"),
        (
            {"relative": False, "scale": np.ones(4)},
            ParameterError,
            r"'scale' parameter .* "
            r"needs relative=True",
        ),
        ({"scale": np.ones(3)}, ParameterError, r"'scale' parameter .* must hold 4 finite"),
        ({"y": Y[:5]}, DataError, r"labels y must have shape \(20,\)"),
        ({"X": np.full((3, 2), np.nan)}, DataError, r"^X must be finite"),
        ({"X": X[:1], "y": Y[:1]}, DataError, r"at least 2 rows"),
        ({"X": np.arange(5.0)}, DataError, r"^X must be 2-D"),
        ({"batch_size": 0}, ParameterError, r"'batch_size' parameter"),
        ({"simultaneous": "yes"}, ParameterError, r"'simultaneous' parameter"),
    ],
)
def test_one_line_errors(kwargs, error, match) -> None:
    with pytest.raises(error, match=match) as info:
        _call(**kwargs)
    assert "\n" not in str(info.value)


def test_helpers_reject_bad_input_in_one_line() -> None:
    with pytest.raises(ParameterError, match=r"'value_range' parameter of mean_upper_bound"):
        mean_upper_bound([1.0, 2.0], method="bernstein")
    with pytest.raises(DataError, match=r"non-empty finite"):
        mean_upper_bound([])
    with pytest.raises(ParameterError, match=r"0 <= k <= n"):
        clopper_pearson(5, 3)
    with pytest.raises(ParameterError, match=r"'confidence' parameter of clopper_pearson"):
        clopper_pearson(1, 3, confidence=2)


def test_curve_methods_reject_unknown_columns() -> None:
    c = _call()
    with pytest.raises(ParameterError, match=r"'column' parameter of RobustnessCurve.auc"):
        c.auc("accuracy")
    with pytest.raises(ParameterError, match=r"'tolerance' parameter"):
        c.radius(-1.0)
    from perturbkit.analysis.bounds import plot_robustness_curves

    with pytest.raises(ParameterError, match=r"'curves' parameter of plot_robustness_curves"):
        plot_robustness_curves([])
    with pytest.raises(ParameterError, match=r"'metric' parameter of plot_robustness_curves"):
        plot_robustness_curves([c], metric="flip_rate")
