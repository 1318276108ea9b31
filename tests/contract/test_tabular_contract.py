"""Every registered perturbation keeps the shared contract (perturbkit.testing.check_perturbation).

The names come from the registry (discovery), and ``EXPECTED`` lists the
parameter variants to check for each: a new perturbation without an entry
here fails ``test_every_perturbation_has_a_test_entry``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from perturbkit import perturbations
from perturbkit.perturbations import Combine, Compose, Perturbation
from perturbkit.testing import check_perturbation, check_registry

# name -> parameter variants to run the contract on (first: defaults).
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "gaussian_noise": [{}, {"absolute": True}, {"columns": [0]}],
    "uniform_noise": [{}, {"absolute": True}, {"columns": [-1]}],
    "laplace_noise": [{}, {"absolute": True}, {"columns": 0}],
    "multiplicative_noise": [{}, {"columns": [0]}],
    "sensor_drift": [{}, {"direction": "down", "absolute": True}, {"columns": [0]}],
    "quantization": [{}, {"absolute": True}, {"columns": [0]}],
    "missing_values": [{}, {"fill": "mean"}, {"fill": "median"}, {"fill": -1.5, "columns": [0]}],
    "outliers": [{}, {"mode": "spike", "k": 3.0}, {"columns": [-1]}],
    "feature_swap": [{}, {"columns": [0]}],
}

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_perturbation_has_a_test_entry() -> None:
    registered = set(perturbations.list("tabular"))
    missing = sorted(registered - set(EXPECTED))
    stale = sorted(set(EXPECTED) - registered)
    assert not missing, f"add contract entries to EXPECTED for: {missing}"
    assert not stale, f"EXPECTED lists perturbations that are not registered: {stale}"


def test_every_perturbation_documents_its_unit() -> None:
    for name in perturbations.list():
        info = perturbations.describe(name)
        assert info["unit"], name
        assert info["summary"], name
        assert info["modality"] in {"tabular", "image", "text", "audio", "weights"}, name
        if info["max_magnitude"] is not None:
            assert 0 < info["max_magnitude"] < float("inf"), name


@st.composite
def tables(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.integers(1, 50))
    d = draw(st.integers(1, 8))
    elements = st.floats(
        -1e3, 1e3, allow_nan=False, allow_subnormal=False, width=np.dtype(dtype).itemsize * 8
    )
    return draw(hnp.arrays(dtype, (n, d), elements=elements))


def _magnitudes(p: Perturbation) -> st.SearchStrategy[tuple[float, float]]:
    hi = 3.0 if p.max_magnitude is None else float(p.max_magnitude)
    m = st.floats(1e-3, hi, allow_nan=False, allow_infinity=False)
    return st.tuples(m, m).map(sorted).map(tuple)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", perturbations.list("tabular"))
@SETTINGS
@given(data=st.data())
def test_contract(name: str, data: st.DataObject) -> None:
    if name not in EXPECTED:
        pytest.fail(f"{name} is registered but has no EXPECTED entry in this file")
    params = data.draw(st.sampled_from(EXPECTED[name]), label="params")
    p = perturbations.get(name, **params)
    X = data.draw(tables(), label="X")
    if data.draw(st.booleans(), label="fitted"):
        ref = data.draw(
            hnp.arrays(
                np.float64,
                (data.draw(st.integers(1, 30)), X.shape[1]),
                elements=st.floats(-1e3, 1e3, allow_nan=False),
            ),
            label="X_ref",
        )
        p.fit(ref)
    mags = data.draw(_magnitudes(p), label="magnitudes")
    seed = data.draw(st.integers(0, 2**32), label="seed")
    check_perturbation(p, X, magnitudes=mags, seed=seed)


@pytest.mark.parametrize("name", perturbations.list("tabular"))
def test_contract_on_a_dataframe(name: str) -> None:
    gen = np.random.default_rng(3)
    df = pd.DataFrame(
        gen.normal(size=(40, 3)) * [1.0, 10.0, 0.1],
        columns=["age", "bmi", "bp"],
        index=pd.RangeIndex(100, 140),
    )
    for params in EXPECTED.get(name, [{}]):
        check_perturbation(perturbations.get(name, **params), df)
        fitted = perturbations.get(name, **params).fit(df)
        check_perturbation(fitted, df.iloc[5:17], magnitudes=(0.2, 0.7, 1.0))
    by_name = perturbations.get(name, columns=["bmi"]).fit(df)
    check_perturbation(by_name, df)


@pytest.mark.parametrize("dtype", [np.float16, np.int64])
def test_contract_other_dtypes(dtype: type) -> None:
    X = (np.random.default_rng(4).normal(size=(30, 4)) * 5).astype(dtype)
    assert check_registry(X) == perturbations.list("tabular")


def test_check_registry_on_default_data() -> None:
    assert check_registry() == perturbations.list("tabular")


@pytest.mark.parametrize(
    "group",
    [
        Compose(["sensor_drift", "gaussian_noise", "missing_values"]),
        Compose(["sensor_drift", "quantization"]),  # deterministic pipeline
        Compose(
            [{"name": "outliers", "params": {"mode": "spike"}}, "feature_swap"], weights=[1, 0.5]
        ),
        Combine(["gaussian_noise", "missing_values"]),
        Combine(["multiplicative_noise", "quantization"], weights=[2, 1]),
        Combine(["sensor_drift", "quantization"]),  # deterministic: sample_block is [None, None]
    ],
    ids=lambda g: g.label,
)
def test_contract_of_pipelines(group: Perturbation) -> None:
    X = np.random.default_rng(5).normal(size=(25, 3))
    check_perturbation(group, X, magnitudes=(0.1, 0.4, 1.0))
    check_perturbation(group, X.astype(np.float32))


# -- the checker itself catches broken plugins -------------------------------------------
class _Base(Perturbation):
    """Adds magnitude times a standard normal draw (test double)."""

    name = "broken_test_double"
    unit = "noise standard deviation"

    def __init__(self, *, offset: float = 0.0) -> None:
        self.offset = offset

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        return rng.standard_normal(X.shape)

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        return (X + magnitude * params + self.offset).astype(X.dtype)


class _GlobalRng(_Base):
    """Reads the global numpy random state."""

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        return np.random.standard_normal(X.shape)  # noqa: NPY002 - the bug under test


class _InPlace(_Base):
    """Writes the caller's array."""

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        X += magnitude * params.astype(X.dtype)
        return X


class _DtypeDraws(_Base):
    """Draws in X's dtype."""

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        return rng.standard_normal(X.shape, dtype=X.dtype)


class _LosesDtype(_Base):
    """Returns float64 whatever the input."""

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        return X + magnitude * params


class _NoRng(_Base):
    """Ignores the rng it is given."""

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        return np.random.default_rng(0).standard_normal(X.shape)


class _FusedDiffers(_Base):
    """A one-shot path that is not sample then apply."""

    def sample_apply(self, X: np.ndarray, rng: np.random.Generator, magnitude: float) -> Any:
        return self.apply(X, self.sample(X, rng), 2 * magnitude)


class _FusedOverdraws(_Base):
    """A one-shot path that reads the generator once more than sample."""

    def sample_apply(self, X: np.ndarray, rng: np.random.Generator, magnitude: float) -> Any:
        out = self.apply(X, self.sample(X, rng), magnitude)
        rng.random()
        return out


class _CheckRefuses(_Base):
    """A check(X) stricter than what its own apply takes."""

    def check(self, X: Any) -> None:
        raise ValueError("no, thanks")


class _StateInInit(_Base):
    """Changes its argument in __init__."""

    def __init__(self, *, offset: float = 0.0) -> None:
        self.offset = offset + 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_Base(offset=1.0), "apply(X, params, 0)"),
        (_GlobalRng(), "same seed"),
        (_InPlace(), "modified"),
        (_DtypeDraws(), "float64"),
        (_LosesDtype(), "dtype"),
        (_NoRng(), "drew the same params"),
        (_StateInInit(), "__init__ must only store"),
        (_FusedDiffers(), "one-shot call at magnitude 0.1 with seed 0 differs"),
        (_FusedOverdraws(), "sample_apply must read rng exactly as sample does"),
        (_CheckRefuses(), "check(X) refused a batch the rest of the checks take"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Perturbation) else "",
)
def test_checker_catches_broken_plugins(bad: Perturbation, message: str) -> None:
    X = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    state = np.random.get_state()  # noqa: NPY002 - _GlobalRng advances it; restored below
    try:
        with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_perturbation(bad, X)
    finally:
        np.random.set_state(state)  # noqa: NPY002


def test_checker_accepts_a_good_unregistered_plugin() -> None:
    X = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    check_perturbation(_Base(), X)
