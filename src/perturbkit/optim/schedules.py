"""Schedules: the factor by which a strength (σ, a drop rate, SAM's ρ, a magnitude) is scaled.

A schedule is called with the step count ``t`` (0 for the first step) and
returns a finite float >= 0 that multiplies the strength given to the
generator. Most start at 1. Any callable ``t -> float`` is accepted where a
schedule is; the optimizers check every value it yields. The adaptive
schedule also observes the loss and the gradient norm, which the optimizer
passes to :meth:`Schedule.observe` before it asks for the factor.

For a training-data perturbation ``t`` is the epoch.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any, ClassVar

from perturbkit._params import Params
from perturbkit._validation import Interval, OneOf, check_param
from perturbkit.exceptions import ParameterError

__all__ = [
    "AdaptiveSchedule",
    "AnnealedSchedule",
    "ConstantSchedule",
    "CosineSchedule",
    "ExponentialSchedule",
    "Schedule",
    "StepSchedule",
    "WarmupSchedule",
    "as_schedule",
    "checked_factor",
    "observed_factor",
    "require_loss",
]

_POS = Interval(0, None, closed_low=False)
_DECAY = Interval(0, 1, closed_low=False)  # a factor per step: growth without end would overflow
_NONNEG = Interval(0, None)
_STEPS = Interval(1, None, integer=True)


class Schedule(Params, abc.ABC):
    """Base class: ``schedule(t) -> factor``; stateless unless it observes training."""

    _constraints: ClassVar[dict[str, Any]] = {}

    @property
    def needs_loss(self) -> bool:
        return False

    @property
    def needs_grad_norm(self) -> bool:
        return False

    @abc.abstractmethod
    def __call__(self, t: int) -> float:
        """The noise-scale factor at step ``t``."""

    def observe(self, *, loss: float | None = None, grad_norm: float | None = None) -> None:
        """Take in one step's loss and gradient norm (only adaptive schedules use them)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def _validate_params(self) -> None:
        self._check_constraints()
        self._check_params()

    def _check_params(self) -> None:
        """Cross-parameter checks of subclasses."""


class ConstantSchedule(Schedule):
    """The factor 1 at every step (the strength as given)."""

    def __call__(self, t: int) -> float:
        return 1.0


class ExponentialSchedule(Schedule):
    """``gamma ** t``.

    Args:
        gamma: the factor per step, in (0, 1] (< 1 decays, 1 keeps the strength; a
            rising noise is :class:`AdaptiveSchedule`'s ``rise``, which is bounded).
    """

    _constraints: ClassVar[dict[str, Any]] = {"gamma": _DECAY}

    def __init__(self, gamma: float = 0.99) -> None:
        self.gamma = gamma

    def __call__(self, t: int) -> float:
        return float(self.gamma) ** t


class StepSchedule(Schedule):
    """``gamma ** (t // step_size)``: multiplied by ``gamma`` every ``step_size`` steps.

    Args:
        step_size: steps between two decays, >= 1.
        gamma: the factor per decay, in (0, 1].
    """

    _constraints: ClassVar[dict[str, Any]] = {"step_size": _STEPS, "gamma": _DECAY}

    def __init__(self, step_size: int = 100, *, gamma: float = 0.5) -> None:
        self.step_size = step_size
        self.gamma = gamma

    def __call__(self, t: int) -> float:
        return float(self.gamma) ** (t // int(self.step_size))


class CosineSchedule(Schedule):
    """Half a cosine from 1 down to ``min_factor`` over ``n_steps``, then ``min_factor``.

    Args:
        n_steps: the length of the decay, >= 1.
        min_factor: the final factor, in [0, 1].
    """

    _constraints: ClassVar[dict[str, Any]] = {"n_steps": _STEPS, "min_factor": Interval(0, 1)}

    def __init__(self, n_steps: int = 1000, *, min_factor: float = 0.0) -> None:
        self.n_steps = n_steps
        self.min_factor = min_factor

    def __call__(self, t: int) -> float:
        lo = float(self.min_factor)
        frac = min(t, int(self.n_steps)) / int(self.n_steps)
        return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * frac))


class AnnealedSchedule(Schedule):
    """Neelakantan et al. (2015): σ_t² = σ² / (1 + t)^γ, i.e. the factor ``(1 + t)^(−γ/2)``.

    With :class:`GaussianGradientNoise` of ``sigma = √η`` this is their
    σ_t² = η / (1 + t)^γ (they use γ = 0.55 and η in {0.01, 0.3, 1}).

    Args:
        gamma: the decay exponent of the variance, >= 0.
    """

    _constraints: ClassVar[dict[str, Any]] = {"gamma": _NONNEG}

    def __init__(self, gamma: float = 0.55) -> None:
        self.gamma = gamma

    def __call__(self, t: int) -> float:
        return (1.0 + t) ** (-0.5 * float(self.gamma))


class WarmupSchedule(Schedule):
    """Linear warm-up from ``start_factor`` to 1 over ``n_steps``, then ``then`` (or 1).

    Args:
        n_steps: warm-up length, >= 1.
        start_factor: the factor at ``t = 0``, >= 0.
        then: the schedule that follows, called with ``t − n_steps``; None keeps 1.
    """

    _constraints: ClassVar[dict[str, Any]] = {"n_steps": _STEPS, "start_factor": _NONNEG}

    def __init__(self, n_steps: int = 100, *, start_factor: float = 0.0, then: Any = None) -> None:
        self.n_steps = n_steps
        self.start_factor = start_factor
        self.then = then

    def _check_params(self) -> None:
        self._then = as_schedule(self.then, owner="WarmupSchedule", name="then")

    @property
    def needs_grad_norm(self) -> bool:
        then = getattr(self, "_then", None)
        return bool(then is not None and getattr(then, "needs_grad_norm", False))

    def __call__(self, t: int) -> float:
        n = int(self.n_steps)
        if t < n:
            s = float(self.start_factor)
            return s + (1.0 - s) * t / n
        then = getattr(self, "_then", None) or as_schedule(self.then, owner="WarmupSchedule")
        return 1.0 if then is None else float(then(t - n))

    def observe(self, *, loss: float | None = None, grad_norm: float | None = None) -> None:
        then = getattr(self, "_then", None)
        if isinstance(then, Schedule):
            then.observe(loss=loss, grad_norm=grad_norm)

    def state_dict(self) -> dict[str, Any]:
        then = getattr(self, "_then", None)
        return {"then": then.state_dict()} if isinstance(then, Schedule) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        then = getattr(self, "_then", None)
        if isinstance(then, Schedule) and "then" in state:
            then.load_state_dict(state["then"])


class AdaptiveSchedule(Schedule):
    """A factor that follows training: decays on a loss plateau or as the gradient shrinks.

    ``monitor="loss"`` (the default) works as ``ReduceLROnPlateau``: when the
    loss has not improved on its best by a relative ``threshold`` for
    ``patience`` steps, the factor is multiplied by ``factor`` (not below
    ``min_factor``). ``monitor="grad_norm"`` sets the factor to the ratio of
    the gradient norm's moving average (decay ``ema``) to its first non-zero
    value, clipped to ``[min_factor, max_factor]``: the noise shrinks with
    the gradient (and stays at 1 until a non-zero gradient is seen).

    With ``rise`` set, the factor rises again near convergence: while the
    gradient norm's moving average is below ``rise_below`` (a stationary
    point: perhaps a saddle), it is multiplied by ``rise`` each step, up to
    ``max_factor``; the boost resets when the gradient grows again. This is
    the "perturb when the gradient is small" rule of perturbed gradient
    descent (Jin et al. 2017).

    The optimizer passes the loss (from ``step(closure)`` or
    ``step(loss=...)``) and the global gradient norm.

    Args:
        monitor: ``"loss"`` or ``"grad_norm"``.
        factor: multiplier per plateau, in (0, 1).
        patience: steps without improvement before a decay, >= 1.
        threshold: relative improvement that counts, >= 0.
        min_factor: the smallest factor, >= 0.
        max_factor: the largest factor, > 0.
        ema: moving-average decay of the gradient norm, in [0, 1).
        rise: multiplier per step near convergence (> 1), or None.
        rise_below: the gradient-norm level under which the factor rises.
    """

    _constraints: ClassVar[dict[str, Any]] = {
        "monitor": OneOf(("loss", "grad_norm")),
        "factor": Interval(0, 1, closed_low=False, closed_high=False),
        "patience": _STEPS,
        "threshold": _NONNEG,
        "min_factor": _NONNEG,
        "max_factor": _POS,
        "ema": Interval(0, 1, closed_high=False),
    }

    def __init__(
        self,
        monitor: str = "loss",
        *,
        factor: float = 0.5,
        patience: int = 10,
        threshold: float = 1e-3,
        min_factor: float = 0.0,
        max_factor: float = 1.0,
        ema: float = 0.9,
        rise: float | None = None,
        rise_below: float | None = None,
    ) -> None:
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.min_factor = min_factor
        self.max_factor = max_factor
        self.ema = ema
        self.rise = rise
        self.rise_below = rise_below
        self._reset()

    def _reset(self) -> None:
        self.value_ = 1.0
        self.best_: float | None = None
        self.n_bad_ = 0
        self.grad_ema_: float | None = None
        self.grad_ref_: float | None = None
        self.boost_ = 1.0

    def _check_params(self) -> None:
        owner = "AdaptiveSchedule"
        if self.min_factor > self.max_factor:
            raise ParameterError(
                f"The 'min_factor' parameter of {owner} must be <= max_factor "
                f"({self.max_factor!r}). Got {self.min_factor!r} instead."
            )
        if (self.rise is None) != (self.rise_below is None):
            raise ParameterError(
                f"The 'rise' and 'rise_below' parameters of {owner} go together: set both or "
                f"neither. Got rise={self.rise!r}, rise_below={self.rise_below!r} instead."
            )
        if self.rise is not None:
            check_param(owner, "rise", self.rise, Interval(1, None, closed_low=False))
            check_param(owner, "rise_below", self.rise_below, _POS)

    @property
    def needs_loss(self) -> bool:
        return self.monitor == "loss"

    @property
    def needs_grad_norm(self) -> bool:
        return self.monitor == "grad_norm" or self.rise is not None

    def observe(self, *, loss: float | None = None, grad_norm: float | None = None) -> None:
        if self.monitor == "loss" and loss is not None and math.isfinite(loss):
            if self.best_ is None or loss < self.best_ - float(self.threshold) * abs(self.best_):
                self.best_ = loss
                self.n_bad_ = 0
            else:
                self.n_bad_ += 1
                if self.n_bad_ >= int(self.patience):
                    self.value_ = max(float(self.min_factor), self.value_ * float(self.factor))
                    self.n_bad_ = 0
        if grad_norm is not None and math.isfinite(grad_norm) and self.needs_grad_norm:
            a = float(self.ema)
            self.grad_ema_ = (
                grad_norm if self.grad_ema_ is None else a * self.grad_ema_ + (1 - a) * grad_norm
            )
            if self.grad_ref_ is None and self.grad_ema_ > 0:
                self.grad_ref_ = self.grad_ema_  # the first non-zero gradient sets the scale
            if self.monitor == "grad_norm" and self.grad_ref_ is not None:
                self.value_ = self.grad_ema_ / self.grad_ref_
            if self.rise is not None:
                if self.grad_ema_ < float(self.rise_below):  # type: ignore[arg-type]
                    self.boost_ = min(self.boost_ * float(self.rise), 1e12)
                else:
                    self.boost_ = 1.0

    def __call__(self, t: int) -> float:
        v = self.value_ * self.boost_
        return min(float(self.max_factor), max(float(self.min_factor), v))

    def state_dict(self) -> dict[str, Any]:
        return {
            "value": self.value_,
            "best": self.best_,
            "n_bad": self.n_bad_,
            "grad_ema": self.grad_ema_,
            "grad_ref": self.grad_ref_,
            "boost": self.boost_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value_ = float(state["value"])
        self.best_ = state["best"]
        self.n_bad_ = int(state["n_bad"])
        self.grad_ema_ = state["grad_ema"]
        self.grad_ref_ = state["grad_ref"]
        self.boost_ = float(state["boost"])


class _Callable(Schedule):
    """A plain callable ``t -> float`` used as a schedule."""

    def __init__(self, fn: Callable[[int], float]) -> None:
        self.fn = fn

    def __call__(self, t: int) -> float:
        return self.fn(t)  # type: ignore[return-value]


def as_schedule(value: Any, *, owner: str, name: str = "schedule") -> Schedule | None:
    """None, a :class:`Schedule` (checked) or a callable ``t -> float``; else one clear line."""
    if value is None:
        return None
    if isinstance(value, Schedule):
        value._validate_params()
        return value
    if isinstance(value, type) and issubclass(value, Schedule):
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be a schedule instance. Got the class "
            f"{value.__name__} instead; write {value.__name__}(...)."
        )
    if callable(value):
        return _Callable(value)
    raise ParameterError(
        f"The '{name}' parameter of {owner} must be a Schedule, a callable t -> float or "
        f"None. Got {value!r} instead."
    )


def require_loss(
    schedule: Schedule | None, loss: float | None, *, owner: str, call: str = "step(closure)"
) -> None:
    """One clear line when ``schedule`` needs the loss and the step was given none."""
    if schedule is not None and schedule.needs_loss and loss is None:
        raise ParameterError(f"The schedule {schedule!r} of {owner} needs the loss: call {call}.")


def checked_factor(schedule: Schedule | None, t: int, *, owner: str) -> float:
    """The schedule's factor at ``t``, or one clear line when it is not a finite float >= 0."""
    if schedule is None:
        return 1.0
    v = schedule(t)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if not ok:
        try:
            v = float(v)  # numpy / 0-dim tensor values
            ok = True
        except (TypeError, ValueError):
            ok = False
    if not ok or not math.isfinite(v) or v < 0:
        raise ParameterError(
            f"The schedule of {owner} must yield a finite float >= 0. Got {v!r} at step {t} "
            "instead."
        )
    return float(v)


def observed_factor(
    schedule: Schedule | None,
    t: int,
    *,
    owner: str,
    loss: float | None = None,
    grad_norm: float | None = None,
) -> float:
    """Let ``schedule`` observe one step's loss and gradient norm, then its checked factor.

    A bad factor raises (one clear line) with the schedule put back as it was, so a
    step that fails here has changed nothing.
    """
    if schedule is None:
        return 1.0
    before = schedule.state_dict()
    schedule.observe(loss=loss, grad_norm=grad_norm)
    try:
        return checked_factor(schedule, t, owner=owner)
    except ParameterError:
        schedule.load_state_dict(before)
        raise
