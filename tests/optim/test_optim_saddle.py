"""Saddle escape (Jin et al. 2017): gradient descent stays on a strict saddle, perturbed GD leaves.

f(x, y) = ½x² + ¼y⁴ − ½y² has a strict saddle at the origin (Hessian
diag(1, −1)) and minima at (0, ±1) with f = −¼. Started exactly on the
saddle the gradient is exactly zero, so plain gradient descent never moves.
With noise of std σ and step η, the unstable coordinate grows like
(1 + η)^t ησ/√(2η): about 57 steps to |y| = ½ for η = 0.1, σ = 0.01, and a
seed needs |Z| < 2e-6 for a standard normal Z to take more than 200 (a
chance below 1e-5), so the bound below holds for any seed.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from perturbkit.optim import GaussianGradientNoise, PerturbedOptimizer  # noqa: E402


def f(theta):
    x, y = theta[0], theta[1]
    return 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2


def descend(opt, theta, n_steps):
    escaped_at = None
    for t in range(n_steps):
        opt.zero_grad()
        loss = f(theta)
        loss.backward()
        opt.step(loss=loss)
        if escaped_at is None and abs(float(theta.detach()[1])) > 0.5:
            escaped_at = t + 1
    return escaped_at


def test_plain_gradient_descent_stays_on_the_saddle():
    theta = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = torch.optim.SGD([theta], lr=0.1)
    for _ in range(500):
        opt.zero_grad()
        f(theta).backward()
        opt.step()
    assert torch.equal(theta.detach(), torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("seed", range(10))
def test_perturbed_gradient_descent_escapes_and_reaches_a_minimum(seed):
    theta = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = PerturbedOptimizer(
        torch.optim.SGD([theta], lr=0.1), GaussianGradientNoise(sigma=0.01), seed=seed
    )
    escaped_at = descend(opt, theta, 400)
    assert escaped_at is not None and escaped_at <= 200
    assert float(f(theta.detach())) == pytest.approx(-0.25, abs=1e-4)
    assert abs(abs(float(theta.detach()[1])) - 1) < 0.01
