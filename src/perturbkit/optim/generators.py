"""Generators of the gradient perturbation δ_t in ``θ ← θ − η(∇L(θ) + δ_t)``.

Each generator is a small class whose ``__init__`` only stores its keyword
arguments (scikit-learn style); they are checked when an optimizer binds it.
One parameter is the generator's *strength* (``sigma``, ``rate`` or ``lam``):
a schedule multiplies it step by step, and a parameter group may override it
by holding a key of the same name (``{"params": ..., "sigma": 0.0}`` switches
the noise off for that group).

The random draws come from the optimizer's explicit ``torch.Generator`` (one
per device, see :mod:`perturbkit.optim._streams`), in the parameters' device
and dtype, into a flat buffer reused across steps. The catalogue:

==========================  ==========================================================
``GaussianGradientNoise``   δ ~ N(0, σ²) per coordinate
``UniformGradientNoise``    δ ~ U(−√3σ, √3σ): standard deviation σ
``LaplaceGradientNoise``    δ ~ Laplace(0, σ/√2): standard deviation σ, heavy tails
``DropGradientNoise``       g + δ = g ⊙ m / (1 − rate), m ~ Bernoulli(1 − rate): unbiased
``ScaledGradientNoise``     δ = σ · g ⊙ ξ, ξ ~ N(0, 1): relative (multiplicative) noise
``OrthogonalGradientNoise`` δ = σ · (ξ − ⟨ξ, g⟩/‖g‖² g) per tensor: δ ⟂ g
``CurvatureGradientNoise``  δ ~ N(0, σ² v̂), v̂ the bias-corrected EMA of g² (Adam's)
``RegularizationGradient``  δ = λ ∇R(θ): λθ (L2, R = ½‖θ‖²) or λ sign(θ) (L1); no noise
==========================  ==========================================================
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from perturbkit._params import Params
from perturbkit._rng import canonical
from perturbkit._validation import Interval, OneOf, check_param
from perturbkit.exceptions import ParameterError
from perturbkit.optim._streams import Fill, check_seed

__all__ = [
    "CurvatureGradientNoise",
    "DropGradientNoise",
    "GaussianGradientNoise",
    "GradientPerturbation",
    "LaplaceGradientNoise",
    "OrthogonalGradientNoise",
    "RegularizationGradient",
    "ScaledGradientNoise",
    "UniformGradientNoise",
]

Draw = Callable[[Fill, int], list[torch.Tensor]]
"""``draw(fill, slot)``: views shaped like the group's gradients, filled by ``fill(buf, gen)``."""

_SQRT3 = math.sqrt(3.0)
_NONNEG = Interval(0, None)


def _normal(buf: torch.Tensor, gen: torch.Generator) -> None:
    buf.normal_(generator=gen)


def _uniform_unit_variance(buf: torch.Tensor, gen: torch.Generator) -> None:
    buf.uniform_(-_SQRT3, _SQRT3, generator=gen)


class GradientPerturbation(Params, abc.ABC):
    """Base class of the δ_t generators.

    Subclasses set ``name``, ``strength`` (the name of the parameter that
    schedules scale and param groups override), ``_constraints``, and
    implement :meth:`delta`.

    Attributes:
        name: a short stable name (``"gaussian"``, ``"drop"``, …).
        strength: the name of the strength parameter.
        stochastic: whether δ is random (then ``seed=`` is accepted).
        stateful: whether it keeps per-parameter state (saved with the optimizer).
    """

    name: ClassVar[str] = ""
    strength: ClassVar[str] = "sigma"
    stochastic: ClassVar[bool] = True
    stateful: ClassVar[bool] = False
    _constraints: ClassVar[dict[str, Any]] = {}

    # -- parameters (scikit-learn style, see perturbkit._params) -------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"name", "class", "params"}``, JSON-ready (the seed is kept as given)."""
        params = {k: v for k, v in self.get_params().items() if k != "seed"}
        return {"name": self.name, "class": type(self).__name__, "params": canonical(params)}

    def _validate_params(self) -> None:
        owner = type(self).__name__
        self._check_constraints()
        if "seed" in self._param_names():
            seed = self.seed  # type: ignore[attr-defined]
            if isinstance(seed, torch.Generator):
                raise ParameterError(
                    f"The 'seed' parameter of {owner} must be an int >= 0, a root numpy "
                    "SeedSequence or None (pass a torch.Generator to the optimizer's seed). "
                    f"Got {seed!r} instead."
                )
            check_seed(seed, owner)

    @property
    def default_strength(self) -> float:
        """The value of the strength parameter (before schedule and group overrides)."""
        return float(getattr(self, self.strength))

    def check_strength(self, value: Any, *, where: str = "") -> float:
        """One line if ``value`` is not an allowed strength; the float otherwise."""
        check_param(
            type(self).__name__ + where, self.strength, value, self._constraints[self.strength]
        )
        return float(value)

    # -- the draw -----------------------------------------------------------------------
    def additive(self, strength: float) -> tuple[Fill, float] | None:
        """``(fill, alpha)`` when δ = alpha · (a draw of ``fill``), independent of the gradient.

        The optimizer then draws and adds in one fused pass (each CPU block is
        added to the gradients right after it is drawn), with the same bits
        as :meth:`delta`, which must draw ``fill`` in slot 0. ``None`` (the
        default) when δ depends on the gradient or on more than one draw.
        """
        return None

    @abc.abstractmethod
    def delta(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor],
        *,
        strength: float,
        draw: Draw,
        state: Sequence[dict[str, Any]],
    ) -> tuple[Sequence[torch.Tensor], float] | None:
        """δ for one parameter group, as ``(tensors, alpha)`` with δ = alpha · tensors.

        ``grads`` must not be written; ``state[i]`` is the persistent state of
        ``params[i]`` (saved with the optimizer). ``None`` means δ = 0.
        """


class GaussianGradientNoise(GradientPerturbation):
    """Additive Gaussian gradient noise, δ ~ N(0, σ²) per coordinate (Neelakantan et al. 2015).

    Args:
        sigma: standard deviation of each coordinate of δ, in gradient units;
            a schedule multiplies it (``AnnealedSchedule`` gives Neelakantan's
            σ_t² = σ²/(1+t)^γ).
        seed: the default seed of an optimizer that binds this generator and
            is given none.
    """

    name = "gaussian"
    _constraints: ClassVar[dict[str, Any]] = {"sigma": _NONNEG}

    def __init__(self, sigma: float = 0.01, *, seed: Any = None) -> None:
        self.sigma = sigma
        self.seed = seed

    def additive(self, strength: float) -> tuple[Fill, float]:
        return _normal, strength

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        return draw(_normal, 0), strength


class UniformGradientNoise(GradientPerturbation):
    """Additive uniform gradient noise on (−√3σ, √3σ): standard deviation σ.

    Args:
        sigma: standard deviation of each coordinate of δ (the half-width is √3σ).
        seed: the default seed of an optimizer that binds this generator.
    """

    name = "uniform"
    _constraints: ClassVar[dict[str, Any]] = {"sigma": _NONNEG}

    def __init__(self, sigma: float = 0.01, *, seed: Any = None) -> None:
        self.sigma = sigma
        self.seed = seed

    def additive(self, strength: float) -> tuple[Fill, float]:
        return _uniform_unit_variance, strength

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        return draw(_uniform_unit_variance, 0), strength


def _laplace(buf: torch.Tensor, gen: torch.Generator) -> None:
    """Laplace(0, 1) by the inverse CDF of one uniform: −sign(v)·log(1 − 2|v|), v = U − ½."""
    one_minus = 1.0 - torch.finfo(buf.dtype).eps  # keeps the logarithm finite
    buf.uniform_(generator=gen).sub_(0.5)
    mag = buf.abs().mul_(2.0).clamp_(max=one_minus).neg_().log1p_().neg_()
    torch.copysign(mag, buf, out=buf)


class LaplaceGradientNoise(GradientPerturbation):
    """Additive Laplace gradient noise, scale σ/√2: standard deviation σ, heavier tails.

    Drawn by the inverse CDF of one uniform draw per coordinate.

    Args:
        sigma: standard deviation of each coordinate of δ.
        seed: the default seed of an optimizer that binds this generator.
    """

    name = "laplace"
    _constraints: ClassVar[dict[str, Any]] = {"sigma": _NONNEG}

    def __init__(self, sigma: float = 0.01, *, seed: Any = None) -> None:
        self.sigma = sigma
        self.seed = seed

    def additive(self, strength: float) -> tuple[Fill, float]:
        return _laplace, strength / math.sqrt(2.0)

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        return draw(_laplace, 0), strength / math.sqrt(2.0)


class DropGradientNoise(GradientPerturbation):
    """Dropout of gradient coordinates: each is zeroed with probability ``rate``.

    The survivors are divided by ``1 − rate``, so the perturbed gradient is
    unbiased: ``g + δ = g ⊙ m / (1 − rate)`` with ``m ~ Bernoulli(1 − rate)``,
    and ``Var(δ_i) = g_i² · rate / (1 − rate)``.

    Args:
        rate: drop probability, in [0, 1) (also after the schedule).
        seed: the default seed of an optimizer that binds this generator.
    """

    name = "drop"
    strength = "rate"
    _constraints: ClassVar[dict[str, Any]] = {"rate": Interval(0, 1, closed_high=False)}

    def __init__(self, rate: float = 0.1, *, seed: Any = None) -> None:
        self.rate = rate
        self.seed = seed

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        keep = 1.0 / (1.0 - strength)

        def fill(b: torch.Tensor, g: torch.Generator) -> None:  # m / (1 − rate) − 1
            b.uniform_(generator=g).ge_(strength).mul_(keep).sub_(1)

        factor = draw(fill, 0)
        torch._foreach_mul_(factor, list(grads))
        return factor, 1.0


class ScaledGradientNoise(GradientPerturbation):
    """Gradient-scaled (multiplicative) noise, δ = σ · g ⊙ ξ with ξ ~ N(0, 1).

    Each coordinate's noise is proportional to its own gradient, so the
    noise vanishes where the gradient does (relative noise of std σ).

    Args:
        sigma: relative standard deviation (the α of ``α·g·ξ``).
        seed: the default seed of an optimizer that binds this generator.
    """

    name = "scaled"
    _constraints: ClassVar[dict[str, Any]] = {"sigma": _NONNEG}

    def __init__(self, sigma: float = 0.1, *, seed: Any = None) -> None:
        self.sigma = sigma
        self.seed = seed

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        z = draw(_normal, 0)
        torch._foreach_mul_(z, list(grads))
        return z, strength


class OrthogonalGradientNoise(GradientPerturbation):
    """Gaussian noise projected orthogonal to the gradient, tensor by tensor.

    δ_i = σ (ξ_i − ⟨ξ_i, g_i⟩ / ‖g_i‖² · g_i) for each parameter tensor i, so
    each δ_i ⟂ g_i and hence δ ⟂ g: to first order the noise does not change
    the loss, it only moves along its level set. A tensor whose gradient is
    zero gets the unprojected ξ.

    Args:
        sigma: standard deviation of each coordinate of ξ before projection.
        seed: the default seed of an optimizer that binds this generator.
    """

    name = "orthogonal"
    _constraints: ClassVar[dict[str, Any]] = {"sigma": _NONNEG}

    def __init__(self, sigma: float = 0.01, *, seed: Any = None) -> None:
        self.sigma = sigma
        self.seed = seed

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        z = draw(_normal, 0)
        for zi, gi in zip(z, grads):
            gf = gi.reshape(-1)
            gg = torch.dot(gf, gf)
            coef = torch.where(gg > 0, torch.dot(zi.reshape(-1), gf) / gg, torch.zeros_like(gg))
            zi.addcmul_(gi, coef, value=-1)
        return z, strength


class CurvatureGradientNoise(GradientPerturbation):
    """Curvature-aware noise: δ ~ N(0, σ² v̂), v̂ the diagonal second-moment estimate.

    v is the exponential moving average of g² (as Adam keeps it; a diagonal
    empirical-Fisher estimate of the curvature), bias-corrected:
    ``v̂ = v / (1 − β^t)``. The noise is anisotropic: large along directions of
    large curvature, where it helps most to leave sharp minima (Zhu et al.
    2019). Under an Adam base, which divides by √v̂, the update noise is about
    σ·η per coordinate. The EMA is one tensor per parameter, saved with the
    optimizer's state.

    Args:
        sigma: standard deviation in units of the running gradient RMS.
        beta: EMA decay of g², in [0, 1).
        seed: the default seed of an optimizer that binds this generator.
    """

    name = "curvature"
    stateful = True
    _constraints: ClassVar[dict[str, Any]] = {
        "sigma": _NONNEG,
        "beta": Interval(0, 1, closed_high=False),
    }

    def __init__(self, sigma: float = 0.1, *, beta: float = 0.999, seed: Any = None) -> None:
        self.sigma = sigma
        self.beta = beta
        self.seed = seed

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        beta = float(self.beta)
        grads = list(grads)
        vs = []
        for st, g in zip(state, grads):
            if "sq_avg" not in st:
                st["sq_avg"] = torch.zeros_like(g, memory_format=torch.preserve_format)
                st["step"] = 0
            st["step"] += 1
            vs.append(st["sq_avg"])
        torch._foreach_mul_(vs, beta)
        torch._foreach_addcmul_(vs, grads, grads, value=1.0 - beta)
        z = draw(_normal, 0)
        torch._foreach_mul_(z, torch._foreach_sqrt(vs))
        torch._foreach_mul_(z, [1.0 / math.sqrt(1.0 - beta ** st["step"]) for st in state])
        return z, strength


class RegularizationGradient(GradientPerturbation):
    """Regularisation-driven perturbation δ = λ ∇R(θ); deterministic.

    ``penalty="l2"``: R = ½‖θ‖², δ = λθ (weight decay, coupled to the
    gradient, so an adaptive base rescales it). ``penalty="l1"``: R = ‖θ‖₁,
    δ = λ sign(θ) (the subgradient; 0 at θ = 0). A schedule anneals λ.

    Args:
        lam: the regularisation strength λ.
        penalty: ``"l2"`` or ``"l1"``.
    """

    name = "regularization"
    strength = "lam"
    stochastic = False
    _constraints: ClassVar[dict[str, Any]] = {"lam": _NONNEG, "penalty": OneOf(("l1", "l2"))}

    def __init__(self, lam: float = 1e-4, *, penalty: str = "l2") -> None:
        self.lam = lam
        self.penalty = penalty

    def delta(self, params, grads, *, strength, draw, state):  # type: ignore[no-untyped-def]
        if self.penalty == "l2":
            return list(params), strength
        return torch._foreach_sign(list(params)), strength
