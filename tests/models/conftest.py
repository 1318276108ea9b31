"""Real, small, fast models for the adapter tests (trained once per session).

Named apart from the root conftest's fixtures so neither shadows the other.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="session")
def cancer_data() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="session")
def digits_data() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="session")
def diabetes_data() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="session")
def cancer_pipeline(cancer_data):
    X, y = cancer_data
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


@pytest.fixture(scope="session")
def diabetes_ridge(diabetes_data):
    X, y = diabetes_data
    return Ridge(alpha=0.1).fit(X, y)


@pytest.fixture(scope="session")
def digits_mlp(digits_data):
    """A small torch MLP trained on digits (logits out), built without touching torch's RNG."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    X, y = digits_data
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return net.eval()
