"""Shared fixtures: real toy models on real bundled data, the global-RNG guard, --runslow."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

# rich.style calls random.getrandbits when first imported (and scikit-learn imports
# rich): import it here, before the global-RNG guard below starts watching.
import rich.style  # noqa: F401


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _torch_state() -> bytes | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return bytes(torch.random.get_rng_state().numpy().tobytes())


@pytest.fixture(autouse=True)
def global_rng_untouched():
    """No library code may read or seed the global RNGs (DESIGN.md, seeding)."""
    np_state = np.random.get_state()  # noqa: NPY002 - reading it is the point
    py_state = random.getstate()
    torch_before = _torch_state()
    yield
    after = np.random.get_state()  # noqa: NPY002
    assert (
        np_state[0] == after[0]
        and np.array_equal(np_state[1], after[1])
        and np_state[2:] == after[2:]
    ), "numpy's global RNG state changed during the test"
    assert random.getstate() == py_state, "Python's global random state changed during the test"
    if torch_before is not None:
        assert _torch_state() == torch_before, "torch's global RNG state changed during the test"


@pytest.fixture(scope="session")
def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def cancer_model(breast_cancer):
    """A real classifier on real data: scaled logistic regression on breast cancer."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = breast_cancer
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)


@pytest.fixture(scope="session")
def diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def diabetes_linear(diabetes):
    from sklearn.linear_model import LinearRegression

    X, y = diabetes
    return LinearRegression().fit(X, y)


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def digits_model(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    return LogisticRegression(max_iter=3000).fit(X / 16.0, y)
