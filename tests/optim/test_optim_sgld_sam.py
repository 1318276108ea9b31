"""SGLD (noise calibration, posterior) and SAM (the exact update), with schedules and resume."""

from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")

from _optim_helpers import load_checkpoint, make_data, make_params, mlp_loss  # noqa: E402

from perturbkit.exceptions import ParameterError  # noqa: E402
from perturbkit.optim import (  # noqa: E402
    SAM,
    SGLD,
    AnnealedSchedule,
    GaussianGradientNoise,
    PerturbedOptimizer,
)

ALPHA = 1e-4  # a correct implementation fails a Monte-Carlo check below with probability < ALPHA


def gaussian_acceptance(samples, mean, var, alpha=ALPHA):
    """Exact tests of n iid N(mean, var) draws: z-test of the mean, χ² test of the variance.

    Each of the two two-sided tests has level alpha/2, so a correct sampler
    fails the pair with probability < alpha (union bound). Returns the
    acceptance interval of the variance as well, to check the test's power.
    """
    n = samples.numel()
    m = float(samples.mean())
    s2 = float(samples.var(unbiased=True))
    z = stats.norm.ppf(1 - alpha / 4)
    lo = stats.chi2.ppf(alpha / 4, n - 1) * var / (n - 1)
    hi = stats.chi2.ppf(1 - alpha / 4, n - 1) * var / (n - 1)
    return abs(m - mean) <= z * math.sqrt(var / n), lo <= s2 <= hi, (lo, hi)


def run_chains(opt, p, grad_fn, n_steps):
    for _ in range(n_steps):
        p.grad = grad_fn(p.detach())
        opt.step()
    return p.detach()


def test_sgld_stationary_variance_on_the_unit_gaussian():
    # U(θ) = ½θ² for 50,000 independent chains; Welling & Teh step ε = 2·lr
    n_chains, lr = 50_000, 0.2
    eps = 2 * lr
    p = torch.nn.Parameter(torch.zeros(n_chains, dtype=torch.float64))
    opt = SGLD([p], lr=lr, seed=0)
    # burn-in: the variance gap contracts by (1 − lr)² = 0.64 a step: 0.64**120 < 1e-23
    theta = run_chains(opt, p, lambda t: t.clone(), 120)
    var = 1 / (1 - eps / 4)
    mean_ok, var_ok, (lo, hi) = gaussian_acceptance(theta, 0.0, var)
    assert mean_ok and var_ok
    # the test has power: the continuous-time variance 1 and a √lr noise (var 1/(2 − lr)) fail
    assert not lo <= 1.0 <= hi
    assert not lo <= 1 / (2 - lr) <= hi


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sgld_samples_the_posterior_of_a_mean_loss_with_n_data(temperature):
    # data x_1..x_N, mean loss ½ mean (θ − x_i)², prior N(0, 1) as weight_decay = 1/N
    g = torch.Generator().manual_seed(0)
    n, n_chains, lr = 50, 50_000, 0.2
    x = torch.randn(n, generator=g, dtype=torch.float64) + 0.7
    p = torch.nn.Parameter(torch.zeros(n_chains, dtype=torch.float64))
    opt = SGLD([p], lr=lr, n_data=n, weight_decay=1 / n, temperature=temperature, seed=1)
    # burn-in from 0: the mean's gap contracts by c = 1 − lr·a ≈ 0.8 a step: c**150 < 1e-14
    theta = run_chains(opt, p, lambda t: t - x.mean(), 150)
    a = 1 + 1 / n  # the gradient of loss + ½(1/N)θ² is a(θ − m)
    m = float(x.mean()) / a
    c = 1 - lr * a
    var = (2 * lr * temperature / n) / (1 - c**2)  # the chain's exact stationary variance
    assert var == pytest.approx(temperature / (n + 1), rel=0.15)  # ≈ the posterior's
    mean_ok, var_ok, _ = gaussian_acceptance(theta, m, var)
    assert mean_ok and var_ok


def test_sgld_at_zero_temperature_is_sgd_bit_for_bit():
    X, y = make_data()
    ps, ps_ref = make_params(), make_params()
    opt = SGLD(ps, lr=0.1, temperature=0.0, weight_decay=1e-3, seed=0)
    ref = torch.optim.SGD(ps_ref, lr=0.1, weight_decay=1e-3)
    for o, params in ((opt, ps), (ref, ps_ref)):
        for _ in range(3):
            o.zero_grad()
            mlp_loss(params, X, y).backward()
            o.step()
    for a, b in zip(ps, ps_ref):
        assert torch.equal(a.detach(), b.detach())


def test_sgld_noise_follows_the_learning_rate_and_the_schedule():
    p = torch.nn.Parameter(torch.zeros(100_000, dtype=torch.float64))
    opt = SGLD([p], lr=0.5, seed=0, schedule=lambda t: 1.0 if t < 2 else 0.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.25)
    stds = []
    for _ in range(3):
        before = p.detach().clone()
        p.grad = torch.zeros_like(p)
        opt.step()
        sched.step()
        stds.append(float((p.detach() - before).std()))
    assert stds[0] == pytest.approx(math.sqrt(2 * 0.5), rel=0.02)
    assert stds[1] == pytest.approx(math.sqrt(2 * 0.125), rel=0.02)
    assert stds[2] == 0.0  # the schedule annealed the noise away


def test_sgld_resume_is_bit_identical():
    X, y = make_data()

    def build(seed):
        ps = make_params()
        return ps, SGLD(ps, lr=0.01, n_data=64, schedule=AnnealedSchedule(), seed=seed)

    ps, opt = build(5)
    for _ in range(6):
        opt.zero_grad()
        mlp_loss(ps, X, y).backward()
        opt.step()
    want = [p.detach().clone() for p in ps]
    ps, opt = build(5)
    for _ in range(3):
        opt.zero_grad()
        mlp_loss(ps, X, y).backward()
        opt.step()
    sd = copy.deepcopy(opt.state_dict())
    saved = [p.detach().clone() for p in ps]
    ps2, opt2 = build(77)
    load_checkpoint(ps2, opt2, saved, sd)
    for _ in range(3):
        opt2.zero_grad()
        mlp_loss(ps2, X, y).backward()
        opt2.step()
    for a, b in zip(want, ps2):
        assert torch.equal(a, b.detach())


def test_sgld_bad_input():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ParameterError, match="'lr' parameter of SGLD must be a float in the range"):
        SGLD([p], lr=-0.1)
    with pytest.raises(ParameterError, match=r"'n_data' parameter of SGLD \(param group 1\)"):
        SGLD([{"params": [p]}, {"params": [torch.nn.Parameter(torch.zeros(1))], "n_data": 0}])


# -- SAM ------------------------------------------------------------------------------------
A = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)


def quad_closure(p, opt):
    def closure():
        opt.zero_grad()
        loss = 0.5 * p @ A @ p
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_takes_the_gradient_at_the_worst_case_neighbour(adaptive):
    theta0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    p = torch.nn.Parameter(theta0.clone())
    lr, rho = 0.1, 0.3
    opt = SAM(torch.optim.SGD([p], lr=lr), rho=rho, adaptive=adaptive)
    loss = opt.step(quad_closure(p, opt))
    g = A @ theta0
    if adaptive:
        e = rho * theta0**2 * g / torch.linalg.vector_norm(theta0 * g)
    else:
        e = rho * g / torch.linalg.vector_norm(g)
    want = theta0 - lr * (A @ (theta0 + e))
    torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-14)
    assert float(loss.detach()) == pytest.approx(float(0.5 * theta0 @ A @ theta0))


def test_sam_with_rho_zero_or_annealed_is_the_base_step():
    theta0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    p, q = torch.nn.Parameter(theta0.clone()), torch.nn.Parameter(theta0.clone())
    sam = SAM(torch.optim.SGD([p], lr=0.1, momentum=0.9), rho=0.5, schedule=lambda t: 0.0)
    ref = torch.optim.SGD([q], lr=0.1, momentum=0.9)
    for _ in range(3):
        sam.step(quad_closure(p, sam))
        quad_closure(q, ref)()
        ref.step()
    assert torch.equal(p.detach(), q.detach())


def test_sam_restores_the_weights_when_the_second_pass_fails():
    theta0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    p = torch.nn.Parameter(theta0.clone())
    opt = SAM(torch.optim.SGD([p], lr=0.1), rho=0.5)
    calls = []

    def closure():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return quad_closure(p, opt)()

    with pytest.raises(RuntimeError, match="boom"):
        opt.step(closure)
    assert torch.equal(p.detach(), theta0)
    opt.step(quad_closure(p, opt))  # usable again


def test_sam_per_group_rho_scheduler_state_and_composition():
    X, y = make_data()
    ps = make_params()
    base = torch.optim.SGD([{"params": ps[:2], "rho": 0.0}, {"params": ps[2:]}], lr=0.1)
    opt = SAM(base, rho=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def closure():
        opt.zero_grad()
        loss = mlp_loss(ps, X, y)
        loss.backward()
        return loss

    for _ in range(2):
        opt.step(closure)
        sched.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.025)
    sd = opt.state_dict()
    assert sd["perturbkit"]["n_steps"] == 2
    # SAM around a PerturbedOptimizer: worst-case plus random perturbation
    inner = PerturbedOptimizer(torch.optim.SGD(ps, lr=0.1), GaussianGradientNoise(0.01), seed=0)
    noisy = SAM(inner, rho=0.05)

    def noisy_closure():
        noisy.zero_grad()
        loss = mlp_loss(ps, X, y)
        loss.backward()
        return loss

    noisy.step(noisy_closure)
    assert inner.n_steps_ == 1


def test_sam_bad_input():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ParameterError, match="'rho' parameter of SAM"):
        SAM(torch.optim.SGD([p], lr=0.1), rho=-1.0)
    with pytest.raises(ParameterError, match="'base' parameter of SAM"):
        SAM([p])
    with pytest.raises(ParameterError, match="needs a closure"):
        SAM(torch.optim.SGD([p], lr=0.1)).step()
