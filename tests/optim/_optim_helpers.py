"""Shared pieces of the optim tests: small models built without touching torch's global RNG.

Imported by the test modules (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def make_params(seed: int = 0, *, dtype=torch.float32, sizes=((20, 8), (20,), (3, 20), (3,))):
    """Parameters of a 2-layer MLP, initialised from an explicit generator."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter((torch.randn(s, generator=g, dtype=dtype) * 0.3).requires_grad_())
        for s in sizes
    ]


def make_data(n: int = 64, seed: int = 1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 8, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (n,), generator=g)
    return X, y


def mlp_loss(params, X, y):
    w1, b1, w2, b2 = params
    return torch.nn.functional.cross_entropy(torch.relu(X @ w1.T + b1) @ w2.T + b2, y)


def load_checkpoint(params, opt, saved, state) -> None:
    """Put a checkpoint into a freshly built run: parameter values, then optimizer state."""
    with torch.no_grad():
        for p, s in zip(params, saved, strict=True):
            p.copy_(s)
    opt.load_state_dict(state)
