"""The stability controller: clipping, the noise bound, divergence, rollback, the log."""

from __future__ import annotations

import logging
import math

import pytest

torch = pytest.importorskip("torch")

from _optim_helpers import make_data, make_params, mlp_loss  # noqa: E402

from perturbkit.optim import (  # noqa: E402
    DivergenceError,
    GaussianGradientNoise,
    PerturbedOptimizer,
    StabilityController,
)


def one_param_opt(stability, gen=None, n=1000, lr=1.0):
    p = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
    opt = PerturbedOptimizer(torch.optim.SGD([p], lr=lr), gen, stability=stability, seed=0)
    return p, opt


def test_clip_norm_bounds_the_gradient_before_the_noise():
    p, opt = one_param_opt(StabilityController(clip_norm=1.0))
    p.grad = torch.full_like(p, 3.0)
    opt.step()
    assert float(p.detach().norm()) == pytest.approx(1.0, rel=1e-5)
    assert opt.stability.counts == {"clip_norm": 1}
    assert opt.stability.events[0]["event"] == "clip_norm"
    assert opt.stability.events[0]["norm"] == pytest.approx(3.0 * math.sqrt(1000))


def test_clip_value_clamps_each_coordinate():
    p, opt = one_param_opt(StabilityController(clip_value=0.5), n=4)
    p.grad = torch.tensor([-2.0, -0.1, 0.3, 9.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(-p.detach(), torch.tensor([-0.5, -0.1, 0.3, 0.5]).double())
    assert opt.stability.counts == {"clip_value": 1}


def test_noise_bound_caps_noise_relative_to_the_gradient():
    stab = StabilityController(max_noise_ratio=0.25)
    p, opt = one_param_opt(stab, GaussianGradientNoise(sigma=10.0), n=10_000)
    g = torch.full_like(p, 0.1)
    p.grad = g.clone()
    opt.step()
    delta = -p.detach() - g
    assert float(delta.norm() ** 2) <= 0.25 * float(g.norm() ** 2) * (1 + 1e-9)
    assert float(delta.norm() ** 2) == pytest.approx(0.25 * float(g.norm() ** 2), rel=1e-6)
    assert stab.counts["noise_bound"] == 1


def test_non_finite_loss_rolls_back_to_the_last_good_state(caplog):
    X, y = make_data()
    ps = make_params()
    stab = StabilityController(snapshot_every=2, noise_decay=0.5)
    opt = PerturbedOptimizer(
        torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        GaussianGradientNoise(0.01),
        stability=stab,
        seed=0,
    )
    saved = {}
    for t in range(5):
        if t == 4:  # the snapshot is taken at the start of a good step (t = 0, 2, 4)
            saved["params"] = [p.detach().clone() for p in ps]
            saved["momentum"] = [opt.state[p]["momentum_buffer"].clone() for p in ps]
        opt.zero_grad()
        loss = mlp_loss(ps, X, y)
        loss.backward()
        opt.step(loss=loss)
    # step 5 goes wrong: a NaN loss
    opt.zero_grad()
    loss = mlp_loss(ps, X, y)
    loss.backward()
    with caplog.at_level(logging.WARNING, logger="perturbkit.optim"):
        opt.step(loss=loss * math.nan)
    for p, want in zip(ps, saved["params"]):
        assert torch.equal(p.detach(), want)
    for p, want in zip(ps, saved["momentum"]):
        assert torch.equal(opt.state[p]["momentum_buffer"], want)
    assert stab.noise_factor_ == 0.5
    kinds = [e["event"] for e in stab.events]
    assert kinds == ["divergence", "rollback"]
    assert stab.events[0]["reason"] == "non-finite loss" and stab.events[1]["to_step"] == 4
    assert "divergence" in caplog.text and "rollback" in caplog.text
    # the next steps go on with half the noise
    opt.zero_grad()
    loss = mlp_loss(ps, X, y)
    loss.backward()
    opt.step(loss=loss)
    assert opt.factor_ == 0.5


def test_loss_spikes_and_non_finite_gradients_are_divergences():
    stab = StabilityController(window=3, spike_factor=10.0, rollback=False)
    p, opt = one_param_opt(stab)
    for loss in (1.0, 1.1, 0.9, 50.0):
        p.grad = torch.full_like(p, 0.01)
        opt.step(loss=loss)
    assert [e["reason"] for e in stab.events] == ["loss spike"]
    before = p.detach().clone()
    p.grad = torch.full_like(p, math.inf)
    opt.step(loss=1.0)
    assert torch.equal(p.detach(), before)  # skipped
    assert stab.events[-1]["reason"] == "non-finite gradient"


def test_too_many_divergences_raise():
    stab = StabilityController(max_divergences=2, rollback=False)
    p, opt = one_param_opt(stab)
    p.grad = torch.zeros_like(p)
    opt.step(loss=math.nan)
    opt.step(loss=math.nan)
    with pytest.raises(DivergenceError, match=r"diverged 3 times .* max_divergences=2"):
        opt.step(loss=math.nan)


def test_events_are_bounded_and_state_round_trips():
    stab = StabilityController(clip_norm=0.1, max_events=3)
    p, opt = one_param_opt(stab)
    for _ in range(5):
        p.grad = torch.ones_like(p)
        opt.step()
    assert len(stab.events) == 3 and stab.counts["clip_norm"] == 5
    other = StabilityController(clip_norm=0.1, max_events=3)
    other.load_state_dict(stab.state_dict())
    assert other.state_dict() == stab.state_dict()
