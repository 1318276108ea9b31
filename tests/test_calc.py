"""The perturbation calculator: known answers, validation, and the safety of formula parsing."""

from __future__ import annotations

import json
import math
import time
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from perturbkit import calc
from perturbkit.exceptions import ParameterError


def test_public_names() -> None:
    for name in ("drop", "taylor", "gradient_change", "norm", "fgsm", "from_run"):
        assert name in calc.__all__ and callable(getattr(calc, name))


# --------------------------------------------------------------------------- drop


def test_drop_known_answer() -> None:
    r = calc.drop(0.9, 0.1, 2.0)
    assert r.perturbed == pytest.approx(0.7)
    assert r.absolute_change == pytest.approx(-0.2)
    assert r.relative_change_pct == pytest.approx(-200 / 9)
    assert not r.below_threshold and r.warning is None and not r.clamped


def test_drop_warns_only_when_crossing_the_threshold() -> None:
    crossed = calc.drop(0.6, 0.1, 2.0)
    assert crossed.below_threshold
    assert "below the threshold 0.5" in crossed.warning
    already = calc.drop(0.4, 0.1, 1.0)
    assert already.below_threshold and already.warning is None
    custom = calc.drop(0.95, 0.05, 1.0, threshold=0.92)
    assert custom.perturbed == pytest.approx(0.9) and custom.warning is not None


def test_drop_clamps_to_probabilities() -> None:
    low = calc.drop(0.3, 1.0, 5.0)
    assert low.perturbed == 0.0 and low.clamped and low.absolute_change == pytest.approx(-0.3)
    high = calc.drop(0.9, 1.0, -5.0)
    assert high.perturbed == 1.0 and high.clamped
    zero = calc.drop(0.0, 0.1, 1.0)
    assert zero.relative_change_pct is None and zero.to_dict()["relative_change_pct"] is None


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"p": float("nan")}, "p"),
        ({"p": 1.5}, "p"),
        ({"p": -0.1}, "p"),
        ({"p": True}, "p"),
        ({"p": "0.5"}, "p"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"epsilon": float("inf")}, "epsilon"),
        ({"sensitivity": float("nan")}, "sensitivity"),
        ({"sensitivity": float("-inf")}, "sensitivity"),
        ({"threshold": 2.0}, "threshold"),
    ],
)
def test_drop_rejects_bad_input(kwargs: dict[str, Any], name: str) -> None:
    args = {"p": 0.5, "epsilon": 0.1, "sensitivity": 1.0} | kwargs
    threshold = args.pop("threshold", 0.5)
    with pytest.raises(
        ParameterError, match=rf"^The '{name}' parameter of calc\.drop must be "
    ) as e:
        calc.drop(args["p"], args["epsilon"], args["sensitivity"], threshold=threshold)
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith("instead.")


# --------------------------------------------------------------------------- taylor


def test_taylor_textbook_square() -> None:
    r = calc.taylor("x**2", 2, 0.01)
    assert r.value == 4.0 and r.derivative == 4.0
    assert r.estimate == pytest.approx(4.04, abs=1e-12)
    assert r.true_value == pytest.approx(4.0401, abs=1e-12)
    assert r.absolute_error == pytest.approx(1e-4, rel=1e-9)  # ε²·f''/2
    assert r.relative_error_pct == pytest.approx(100 * 1e-4 / 4.0401)
    assert r.derivative_expression == "2*x"


def test_taylor_functions_constants_and_caret() -> None:
    r = calc.taylor(
        "sin(t)^2 + exp(t) + abs(t) + pi*E + sqrt(t) + log(t) + tanh(t) + tan(t)",
        0.5,
        0.0,
        variable="t",
    )
    t = 0.5
    f = math.sin(t) ** 2 + math.exp(t) + t + math.pi * math.e + math.sqrt(t) + math.log(t)
    f += math.tanh(t) + math.tan(t)
    df = 2 * math.sin(t) * math.cos(t) + math.exp(t) + 1 + 0.5 / math.sqrt(t) + 1 / t
    df += 1 - math.tanh(t) ** 2 + 1 / math.cos(t) ** 2
    assert r.value == pytest.approx(f, rel=1e-12)
    assert r.derivative == pytest.approx(df, rel=1e-12)
    assert r.estimate == r.true_value == pytest.approx(f, rel=1e-12) and r.absolute_error == 0


def test_taylor_error_is_second_order() -> None:
    errs = [calc.taylor("exp(x)", 0.0, eps).absolute_error for eps in (0.1, 0.05)]
    assert errs[0] / errs[1] == pytest.approx(4, rel=0.05)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("x**2", float("nan"), 0.1), "x"),
        (("x**2", 1.0, -0.1), "epsilon"),
        (("x**2", 1.0, float("inf")), "epsilon"),
        (("sqrt(x)", -1.0, 0.1), "x"),
        (("1/x", 0.0, 0.1), "x"),
        (("log(x)", -0.5, 0.1), "x"),
        (("1/(x-1)", 0.0, 1.0), "epsilon"),
        (("exp(x)", 1000.0, 0.1), "x"),
    ],
)
def test_taylor_rejects_bad_points(args: tuple[Any, ...], name: str) -> None:
    with pytest.raises(ParameterError, match=rf"^The '{name}' parameter of calc\.taylor must be "):
        calc.taylor(*args)


@pytest.mark.parametrize("variable", ["", "1x", "sin", "pi", "x__y", "lambda", "Integer", 3])
def test_taylor_rejects_bad_variable_names(variable: Any) -> None:
    with pytest.raises(ParameterError, match=r"^The 'variable' parameter of calc\.taylor must be "):
        calc.taylor("x", 1.0, 0.1, variable=variable)


MALICIOUS = [
    "__import__('os').system('echo hi')",
    "x.__class__",
    "x.__class__.__mro__",
    "lambda: 1",
    "open('f')",
    "exec('print(1)')",
    "eval('1')",
    "getattr(x, 'real')",
    "x.real",
    "import os",
    "x if x else 1",
    "[x for x in ()]",
    "x; 1",
    "x\nimport os",
    "globals()",
    "Symbol('y')",
    "Integer(2)*x",
    "sympify('x')",
    "x == 1",
    "x @ x",
    "'x'",
    "x # comment",
]

MALFORMED = [
    "",
    "   ",
    "x**",
    "((x)",
    "2x",
    "sin",
    "sni(x)",
    "y + x",
    "x, x",
    "1j*x",
    "0x1f",
    "1_000*x",
    "é",
    "x" + "+x" * 300,
]


@pytest.mark.parametrize("expression", MALICIOUS)
def test_taylor_parsing_rejects_code(expression: str, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        ParameterError, match=r"^The 'expression' parameter of calc\.taylor must be "
    ):
        calc.taylor(expression, 1.0, 0.1)
    out, err = capfd.readouterr()
    assert "hi" not in out and out == "" and err == ""


@pytest.mark.parametrize("expression", [*MALFORMED, None, 3, b"x"])
def test_taylor_rejects_malformed_expressions(expression: Any) -> None:
    with pytest.raises(
        ParameterError, match=r"^The 'expression' parameter of calc\.taylor must be "
    ) as e:
        calc.taylor(expression, 1.0, 0.1)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "expression",
    [
        "9**9**9**9",
        "-9**9**9",
        "(x-x+9)**(9**9)",
        "(2*x)**(10**9)",
        "2**-1000000",
        "(1+10**-300)**1000**1000",
        "2**30000*2**30000*2**30000*2**30000*2**30000*2**30000*x",
    ],
)
def test_taylor_refuses_huge_exact_arithmetic_quickly(expression: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ParameterError, match="exact powers stay under"):
        calc.taylor(expression, 1.0, 0.1)
    assert time.perf_counter() - start < 2.0


def test_taylor_unknown_function_is_named() -> None:
    with pytest.raises(ParameterError, match=r"unknown function 'sni'"):
        calc.taylor("sni(x)", 1.0, 0.1)
    with pytest.raises(ParameterError, match=r"unknown name 'y'"):
        calc.taylor("x + y", 1.0, 0.1)


# --------------------------------------------------------------------------- gradient_change


def test_gradient_change_quadratic() -> None:
    # f = x² + xy + y²: ∇f = (2x + y, x + 2y); ∇f changes by (2δx + δy, δx + 2δy).
    r = calc.gradient_change("x**2 + x*y + y**2", [1, 2], [0.1, -0.2])
    assert r.variables == ("x", "y")
    assert r.gradient == pytest.approx((4.0, 5.0))
    assert r.gradient_perturbed == pytest.approx((4.0, 4.7))
    assert r.change == pytest.approx((0.0, -0.3), abs=1e-15)
    assert r.change_l2 == pytest.approx(0.3)


def test_gradient_change_scalar_and_variable_order() -> None:
    r = calc.gradient_change("sin(x)", 0.0, 0.5)
    assert r.change == pytest.approx((math.cos(0.5) - 1,))
    auto = calc.gradient_change("x10 + 2*x2 + 3*x1", [0, 0, 0], [1, 1, 1])
    assert auto.variables == ("x1", "x2", "x10")
    assert auto.gradient == (3.0, 2.0, 1.0) and auto.change == (0.0, 0.0, 0.0)
    given = calc.gradient_change("a*b", [2, 3], [1, 0], variables=["b", "a"])
    assert given.variables == ("b", "a") and given.gradient == (3.0, 2.0)
    assert given.gradient_perturbed == (3.0, 3.0)


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (("x*y", [1], [0, 0]), {}, "x"),
        (("x*y", [1, 2], [0]), {}, "delta"),
        (("x*y", [1, float("nan")], [0, 0]), {}, "x"),
        (("x*y", [1, 2], [0, float("inf")]), {}, "delta"),
        (("x*y", [], []), {}, "x"),
        (("3 + pi", [1], [0]), {}, "expression"),
        (("x*y", [1, 2], [0, 0]), {"variables": ["x"]}, "expression"),
        (("x*y", [1, 2], [0, 0]), {"variables": ["x", "x"]}, "variables"),
        (("x*y", [1, 2], [0, 0]), {"variables": []}, "variables"),
        (("x.__class__", [1], [0]), {}, "expression"),
        (("1/x", [0], [1]), {}, "x"),
        (("1/x", [1], [-1]), {}, "delta"),
    ],
)
def test_gradient_change_rejects_bad_input(
    args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ParameterError, match=rf"^The '{name}' parameter of calc\.gradient_change"):
        calc.gradient_change(*args, **kwargs)


# --------------------------------------------------------------------------- norm and fgsm


def test_norm_known_answer() -> None:
    r = calc.norm([0.01, -0.02, 0.03])
    assert r.l2 == pytest.approx(0.037416573867739, rel=1e-12)
    assert r.l1 == pytest.approx(0.06) and r.linf == pytest.approx(0.03) and r.n == 3
    assert calc.norm(np.zeros(4)).to_dict() == {"n": 4, "l1": 0.0, "l2": 0.0, "linf": 0.0}


def test_norm_does_not_overflow_on_large_entries() -> None:
    r = calc.norm([3e200, 4e200])
    assert r.l2 == pytest.approx(5e200) and r.linf == 4e200
    with pytest.raises(ParameterError, match=r"^The 'vector' parameter of calc\.norm"):
        calc.norm([1.5e308, 1.5e308])


@pytest.mark.parametrize(
    "vector",
    [
        [],
        [[1.0, 2.0]],
        [1.0, float("nan")],
        [float("inf")],
        "abc",
        [1, "a"],
        [True],
        None,
        3.0,
        [1 + 2j],
        [[1], [2, 3]],
    ],
)
def test_norm_rejects_bad_vectors(vector: Any) -> None:
    with pytest.raises(
        ParameterError, match=r"^The 'vector' parameter of calc\.norm must be .* instead\.$"
    ):
        calc.norm(vector)


def test_fgsm_known_answer() -> None:
    r = calc.fgsm(0.05, [1, -1, 1])
    assert r.perturbation == pytest.approx((0.05, -0.05, 0.05))
    assert r.sign == (1, -1, 1)
    assert r.linf == pytest.approx(0.05) and r.l2 == pytest.approx(0.05 * math.sqrt(3))
    scaled = calc.fgsm(0.05, np.array([0.3, -2.0, 1e-4]))
    assert scaled.perturbation == r.perturbation


def test_fgsm_zero_gradient_entries_do_not_move() -> None:
    r = calc.fgsm(0.1, [0.0, -0.0, 2.0])
    assert r.perturbation == (0.0, 0.0, 0.1)
    assert all(math.copysign(1, v) == 1 for v in r.perturbation[:2])  # no -0.0
    assert r.l2 == pytest.approx(0.1) and r.l1 == pytest.approx(0.1)
    assert calc.fgsm(0.0, [1.0, -1.0]).l2 == 0.0


@pytest.mark.parametrize(
    ("epsilon", "gradient", "name"),
    [
        (-0.05, [1.0], "epsilon"),
        (float("nan"), [1.0], "epsilon"),
        (0.05, [], "gradient"),
        (0.05, [float("nan")], "gradient"),
    ],
)
def test_fgsm_rejects_bad_input(epsilon: Any, gradient: Any, name: str) -> None:
    with pytest.raises(ParameterError, match=rf"^The '{name}' parameter of calc\.fgsm"):
        calc.fgsm(epsilon, gradient)


# --------------------------------------------------------------------------- from_run


@dataclass(frozen=True)
class FakeResult:
    """The two things from_run reads from a SweepResult: summary() and baseline."""

    table: pd.DataFrame
    baseline: dict[str, float] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        return self.table


def _fake_result() -> FakeResult:
    rows = []
    for mag, acc in [(0.0, 0.90), (0.1, 0.88), (0.5, 0.70)]:
        rows.append(("gaussian_noise", "gaussian_noise", mag, "accuracy", "", acc))
        rows.append(("gaussian_noise", "gaussian_noise", mag, "accuracy_drop", "", 0.90 - acc))
        rows.append(("gaussian_noise", "gaussian_noise", mag, "accuracy", "class=1", acc - 0.1))
    for mag, acc in [(0.2, 0.85), (0.4, 0.80)]:  # no magnitude-0 row: the baseline fills it
        rows.append(("feature_dropout(p=0.5)", "feature_dropout", mag, "accuracy", "", acc))
    table = pd.DataFrame(
        rows, columns=["label", "perturbation", "magnitude", "metric", "group", "mean"]
    )
    return FakeResult(table, {"accuracy": 0.90})


def test_from_run_on_the_grid_and_interpolated() -> None:
    fake = _fake_result()
    on = calc.from_run(fake, "gaussian_noise", 0.5)
    assert not on.interpolated and on.measured == pytest.approx(0.70)
    assert on.sensitivity == pytest.approx(0.2)  # (0.90 - 0.88) / 0.1
    assert on.sensitivity_magnitude == 0.1
    assert on.estimate == pytest.approx(0.80)
    assert on.difference == pytest.approx(0.10)
    mid = calc.from_run(fake, "gaussian_noise", 0.3)
    assert mid.interpolated and mid.measured == pytest.approx(0.79)
    assert mid.estimate == pytest.approx(0.84)
    small = calc.from_run(fake, "gaussian_noise", 0.05)  # inside the first segment: they agree
    assert small.estimate == pytest.approx(small.measured)
    assert on.grid_magnitudes == (0.0, 0.1, 0.5) and on.grid_values == pytest.approx(
        (0.9, 0.88, 0.7)
    )


def test_from_run_metric_without_baseline_and_label_lookup() -> None:
    fake = _fake_result()
    drop = calc.from_run(fake, "gaussian_noise", 0.5, metric="accuracy_drop")
    assert drop.baseline == 0.0 and drop.sensitivity == pytest.approx(-0.2)
    assert drop.measured == pytest.approx(0.2)
    by_name = calc.from_run(fake, "feature_dropout", 0.4)
    by_label = calc.from_run(fake, "feature_dropout(p=0.5)", 0.4)
    assert by_name == by_label and by_name.perturbation == "feature_dropout(p=0.5)"
    assert by_name.grid_magnitudes == (0.0, 0.2, 0.4)
    assert by_name.sensitivity == pytest.approx(0.25) and by_name.measured == pytest.approx(0.80)


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (("nope", 0.1), {}, "perturbation"),
        ((3, 0.1), {}, "perturbation"),
        (("gaussian_noise", 0.6), {}, "magnitude"),
        (("gaussian_noise", -0.1), {}, "magnitude"),
        (("gaussian_noise", float("nan")), {}, "magnitude"),
        (("gaussian_noise", 0.1), {"metric": "f1"}, "metric"),
        (("feature_dropout", 0.1), {"metric": "accuracy_drop"}, "metric"),
    ],
)
def test_from_run_rejects_bad_input(
    args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ParameterError, match=rf"^The '{name}' parameter of calc\.from_run"):
        calc.from_run(_fake_result(), *args, **kwargs)


def test_from_run_rejects_things_that_are_not_results() -> None:
    with pytest.raises(
        ParameterError, match=r"^The 'result' parameter of calc\.from_run must be a SweepResult"
    ):
        calc.from_run({"accuracy": 1.0}, "gaussian_noise", 0.1)


def test_from_run_ambiguous_name_asks_for_a_label() -> None:
    fake = _fake_result()
    noise = fake.table[fake.table["perturbation"] == "gaussian_noise"]
    one = noise.assign(label="gaussian_noise(columns=[0])")
    other = noise.assign(label="gaussian_noise(absolute=True)")
    both = FakeResult(pd.concat([one, other], ignore_index=True), fake.baseline)
    with pytest.raises(ParameterError, match="unambiguous"):
        calc.from_run(both, "gaussian_noise", 0.1)
    assert calc.from_run(both, "gaussian_noise(absolute=True)", 0.1).measured == pytest.approx(0.88)


def test_from_run_on_a_real_sweep(cancer_model: Any, breast_cancer: Any) -> None:
    try:
        from perturbkit import sweep
    except ImportError as exc:  # pragma: no cover - only while the engine is mid-edit
        pytest.skip(f"perturbkit.sweep is not importable yet: {exc}")
    X, y = breast_cancer
    result = sweep(
        cancer_model,
        X,
        y,
        perturbations=["gaussian_noise"],
        magnitudes=[0, 0.1, 0.5],
        seed=0,
        progress=False,
    )
    s = result.summary()
    acc = s[(s["metric"] == "accuracy") & (s["group"] == "")].set_index("magnitude")["mean"]
    r = calc.from_run(result, "gaussian_noise", 0.3)
    assert r.baseline == pytest.approx(result.baseline["accuracy"])
    assert r.interpolated and r.grid_magnitudes == (0.0, 0.1, 0.5)
    assert r.measured == pytest.approx((acc[0.1] + acc[0.5]) / 2)
    assert r.sensitivity == pytest.approx((acc[0.0] - acc[0.1]) / 0.1)
    assert r.estimate == pytest.approx(r.baseline - 0.3 * r.sensitivity)
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["metric"] == "accuracy"


# --------------------------------------------------------------------------- shared contract


RESULTS = {
    "drop": lambda: calc.drop(0.8, 0.1, 1.0),
    "taylor": lambda: calc.taylor("x**2", 2, 0.01),
    "gradient_change": lambda: calc.gradient_change("x*y", [1, 2], [0.1, 0.2]),
    "norm": lambda: calc.norm([0.01, -0.02, 0.03]),
    "fgsm": lambda: calc.fgsm(0.05, [1, -1, 1]),
    "from_run": lambda: calc.from_run(_fake_result(), "gaussian_noise", 0.3),
}


@pytest.mark.parametrize("make", RESULTS.values(), ids=RESULTS.keys())
def test_results_are_frozen_json_ready_and_summarised(make: Any) -> None:
    result = make()
    d = result.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    line = result.summary()
    assert isinstance(line, str) and line and "\n" not in line
    name = next(iter(d))
    with pytest.raises(FrozenInstanceError):
        setattr(result, name, 0)
