"""Schedules: known values, the adaptive rules, state round trips, bad input."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from perturbkit.exceptions import ParameterError
from perturbkit.optim import (
    AdaptiveSchedule,
    AnnealedSchedule,
    ConstantSchedule,
    CosineSchedule,
    ExponentialSchedule,
    StepSchedule,
    WarmupSchedule,
)
from perturbkit.optim.schedules import as_schedule, checked_factor


def test_known_values():
    assert [ConstantSchedule()(t) for t in (0, 10)] == [1.0, 1.0]
    assert ExponentialSchedule(0.5)(3) == 0.125
    assert [StepSchedule(2, gamma=0.1)(t) for t in (0, 1, 2, 5)] == pytest.approx([1, 1, 0.1, 0.01])
    cos = CosineSchedule(10, min_factor=0.2)
    assert cos(0) == 1.0 and cos(5) == pytest.approx(0.6) and cos(10) == cos(50) == 0.2
    warm = WarmupSchedule(4, start_factor=0.0, then=ExponentialSchedule(0.5))
    warm._validate_params()
    assert [warm(t) for t in (0, 2, 4, 5)] == pytest.approx([0.0, 0.5, 1.0, 0.5])


def test_annealed_schedule_is_neelakantans_variance_decay():
    s = AnnealedSchedule(gamma=0.55)
    eta = 0.3  # σ² of the generator
    for t in (0, 1, 10, 1000):
        assert eta * s(t) ** 2 == pytest.approx(eta / (1 + t) ** 0.55)


def test_adaptive_schedule_decays_on_a_loss_plateau():
    s = AdaptiveSchedule("loss", factor=0.5, patience=3, threshold=0.01)
    s._validate_params()
    for loss in (1.0, 0.9, 0.8):
        s.observe(loss=loss)
    assert s(0) == 1.0
    for _ in range(3):  # no relative improvement of 1 %
        s.observe(loss=0.799)
    assert s(0) == 0.5
    for _ in range(3):
        s.observe(loss=0.8)
    assert s(0) == 0.25


def test_adaptive_schedule_follows_the_gradient_norm_and_rises_near_convergence():
    s = AdaptiveSchedule("grad_norm", ema=0.0, rise=2.0, rise_below=0.05, max_factor=1.0)
    s._validate_params()
    s.observe(grad_norm=4.0)
    s.observe(grad_norm=1.0)
    assert s(0) == pytest.approx(0.25)
    s.observe(grad_norm=0.04)  # below rise_below: the boost starts
    assert s(0) == pytest.approx(0.01 * 2)
    for _ in range(10):
        s.observe(grad_norm=0.04)
    assert s(0) == 1.0  # risen back, capped at max_factor
    s.observe(grad_norm=2.0)
    assert s(0) == pytest.approx(0.5)  # the boost resets when the gradient grows


def test_adaptive_state_round_trip():
    s = AdaptiveSchedule("loss", patience=1, rise=3.0, rise_below=1.0)
    for v in (1.0, 2.0, 3.0):
        s.observe(loss=v, grad_norm=0.5)
    t = AdaptiveSchedule("loss", patience=1, rise=3.0, rise_below=1.0)
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict() and t(0) == s(0)


def test_callables_are_schedules_and_their_values_are_checked():
    s = as_schedule(lambda t: 0.5**t, owner="X")
    assert checked_factor(s, 2, owner="X") == 0.25
    assert checked_factor(None, 7, owner="X") == 1.0
    bad = as_schedule(lambda t: -1.0, owner="X")
    with pytest.raises(ParameterError, match=r"Got -1.0 at step 0 instead"):
        checked_factor(bad, 0, owner="X")
    worse = as_schedule(lambda t: "a", owner="X")
    with pytest.raises(ParameterError, match="must yield a finite float"):
        checked_factor(worse, 0, owner="X")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ExponentialSchedule(gamma=-0.5), "'gamma' parameter of ExponentialSchedule"),
        (lambda: ExponentialSchedule(gamma=2.0), r"'gamma' .* ExponentialSchedule .* Got 2\.0"),
        (lambda: StepSchedule(5, gamma=1.5), r"'gamma' parameter of StepSchedule .* Got 1\.5"),
        (lambda: StepSchedule(0), "'step_size' parameter of StepSchedule must be an int"),
        (lambda: CosineSchedule(10, min_factor=2.0), "'min_factor' parameter of CosineSchedule"),
        (lambda: AnnealedSchedule(gamma=math.nan), "'gamma' parameter of AnnealedSchedule"),
        (lambda: AdaptiveSchedule("loss", rise=2.0), "'rise' and 'rise_below' parameters"),
        (lambda: AdaptiveSchedule("accuracy"), "'monitor' parameter of AdaptiveSchedule"),
        (lambda: AdaptiveSchedule(min_factor=2.0), "'min_factor' parameter .* <= max_factor"),
        (lambda: WarmupSchedule(3, then=5), "'then' parameter of WarmupSchedule"),
    ],
)
def test_bad_schedules_are_one_clear_line(make, match):
    with pytest.raises(ParameterError, match=match) as e:
        as_schedule(make(), owner="PerturbedOptimizer")
    assert "\n" not in str(e.value)


def test_a_schedule_class_is_not_a_schedule():
    with pytest.raises(ParameterError, match="Got the class CosineSchedule instead"):
        as_schedule(CosineSchedule, owner="PerturbedOptimizer")
    with pytest.raises(ParameterError, match="must be a Schedule, a callable"):
        as_schedule(3, owner="PerturbedOptimizer")
