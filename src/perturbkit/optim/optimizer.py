"""PerturbedOptimizer: any torch optimizer, with a perturbation added to its gradients.

``θ ← base_step(θ, ∇L(θ) + δ_t)`` where δ_t comes from a generator
(:mod:`perturbkit.optim.generators`), scaled by a schedule and by the
stability controller's noise factor, per parameter group.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from perturbkit.exceptions import ParameterError
from perturbkit.optim._streams import TorchStreams, Workspace
from perturbkit.optim._wrapper import WrappedOptimizer, check_base, clone_state, loss_value
from perturbkit.optim.generators import GradientPerturbation
from perturbkit.optim.schedules import Schedule, as_schedule, observed_factor, require_loss
from perturbkit.optim.stability import StabilityController

__all__ = ["PerturbedOptimizer"]

_OWNER = "PerturbedOptimizer"

Group = tuple[int, dict[str, Any], list[torch.Tensor], list[torch.Tensor]]


def _global_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``grads`` together, as a float64 0-dim tensor on the first's device."""
    if not grads:
        return torch.zeros((), dtype=torch.float64)
    norms = torch._foreach_norm(grads)
    dev = norms[0].device
    return torch.linalg.vector_norm(torch.stack([n.to(dev, torch.float64) for n in norms]))


class PerturbedOptimizer(WrappedOptimizer):
    """Wrap a ``torch.optim.Optimizer`` and perturb its gradients before each step.

    A drop-in for the base optimizer in a training loop: ``zero_grad``,
    ``param_groups``, LR schedulers, ``add_param_group`` and
    ``state_dict``/``load_state_dict`` work through it. At each ``step`` it
    (1) checks for divergence, (2) clips, (3) adds
    ``δ = generator(strength_g × schedule(t) × noise_factor)`` to each
    parameter's ``.grad`` in place, group by group, then (4) calls
    ``base.step()``. ``.grad`` holds the perturbed gradient afterwards.

    Per-group strength: a param group holding the generator's strength key
    (``"sigma"``, ``"rate"`` or ``"lam"``) uses that value instead of the
    generator's, e.g. ``SGD([{"params": body}, {"params": head, "sigma": 0.0}])``.

    Randomness: explicit ``torch.Generator`` s seeded from ``seed`` (else the
    generator's ``seed``, else fresh entropy recorded in :attr:`seed_`);
    parameters on the CPU draw on CPU generators (one per block of 2**20
    elements, filled in parallel; the bits do not depend on the thread
    count), parameters on a GPU draw on a generator of that GPU (so the bits
    depend on the device). See :mod:`perturbkit.optim._streams`. The global
    torch RNG is never used. ``state_dict()`` holds the generators'
    states, the step count, the schedule's and the controller's state, so a
    resumed run is bit-identical to an uninterrupted one.

    Args:
        base: the optimizer to wrap (SGD with or without momentum or
            Nesterov, Adam, AdamW, RMSprop, …; not LBFGS).
        generator: a :class:`~perturbkit.optim.generators.GradientPerturbation`,
            or None for no perturbation (clipping and divergence control only).
        schedule: a :class:`~perturbkit.optim.schedules.Schedule` or a callable
            ``t -> factor`` scaling the strength; None keeps it constant.
        stability: a :class:`~perturbkit.optim.stability.StabilityController`, or None.
        seed: an int, a root ``numpy.random.SeedSequence``, a ``torch.Generator``
            on the parameters' device (used as is), or None.

    Attributes:
        seed_: the root seed used (None when a torch.Generator was given).
        n_steps_: the number of ``step`` calls so far (the schedule's ``t``).
        factor_: the last step's factor (schedule × noise factor).
        noise_state: per-parameter state of stateful generators.
    """

    def __init__(
        self,
        base: torch.optim.Optimizer,
        generator: GradientPerturbation | None = None,
        *,
        schedule: Schedule | Callable[[int], float] | None = None,
        stability: StabilityController | None = None,
        seed: Any = None,
    ) -> None:
        base = check_base(base, _OWNER)
        if generator is not None:
            if isinstance(generator, type) and issubclass(generator, GradientPerturbation):
                raise ParameterError(
                    f"The 'generator' parameter of {_OWNER} must be a generator instance. Got "
                    f"the class {generator.__name__} instead; write {generator.__name__}(...)."
                )
            if not isinstance(generator, GradientPerturbation):
                raise ParameterError(
                    f"The 'generator' parameter of {_OWNER} must be a GradientPerturbation "
                    "(e.g. GaussianGradientNoise(sigma=0.01)) or None. Got "
                    f"{type(generator).__name__} instead."
                )
            generator._validate_params()
        if stability is not None:
            if not isinstance(stability, StabilityController):
                raise ParameterError(
                    f"The 'stability' parameter of {_OWNER} must be a StabilityController or "
                    f"None. Got {type(stability).__name__} instead."
                )
            stability._validate_params()
        if seed is None and generator is not None:
            seed = getattr(generator, "seed", None)
        self._bind(base)
        self.generator = generator
        self.schedule = as_schedule(schedule, owner=_OWNER)
        self.stability = stability
        self._streams = TorchStreams(seed, owner=_OWNER)
        self._streams.check_devices(self._params())
        self._work = Workspace()
        self.noise_state: dict[torch.Tensor, dict[str, Any]] = {}
        self.n_steps_ = 0
        self.factor_ = 1.0
        self._snap: dict[str, Any] | None = None
        for i, group in enumerate(self.param_groups):
            self._check_group(i, group)

    @property
    def seed_(self) -> int | None:
        return self._streams.root

    def _check_group(self, index: int, group: dict[str, Any]) -> None:
        gen = self.generator
        if gen is not None and gen.strength in group:
            gen.check_strength(group[gen.strength], where=f" (param group {index})")
        self._streams.check_devices(group["params"])

    def __repr__(self) -> str:
        return (
            f"{_OWNER}(base={type(self.base).__name__}, generator={self.generator!r}, "
            f"schedule={self.schedule!r}, stability={self.stability!r}, seed_={self.seed_!r})"
        )

    # -- the step ------------------------------------------------------------------------
    def _collect(self) -> list[Group]:
        out: list[Group] = []
        for gi, group in enumerate(self.param_groups):
            ps, gs = [], []
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    raise ParameterError(
                        f"{_OWNER} does not perturb sparse gradients (param group {gi}); use "
                        "dense gradients (e.g. nn.Embedding(sparse=False))."
                    )
                ps.append(p)
                gs.append(g)
            out.append((gi, group, ps, gs))
        return out

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], Any] | None = None, *, loss: Any = None
    ) -> Any:
        """Perturb the gradients and take the base optimizer's step.

        Args:
            closure: optional; re-evaluates the model and returns the loss (it
                is called once, with gradients enabled, before the step).
            loss: the loss of this step, when no closure is given; used by
                divergence detection and the adaptive schedule.

        Returns:
            The loss (the closure's, or ``loss``), as given.
        """
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._step(loss)
        return loss

    def _step(self, loss: Any) -> None:
        value = loss_value(loss)
        t = self.n_steps_
        sched, stab = self.schedule, self.stability
        require_loss(sched, value, owner=_OWNER, call="step(closure) or step(loss=loss)")
        groups = self._collect()
        needs_norm = (stab is not None and stab.needs_grad_norm) or (
            sched is not None and sched.needs_grad_norm
        )
        all_grads = [g for *_, gs in groups for g in gs]
        grad_norm = float(_global_norm(all_grads)) if needs_norm else None
        if stab is not None:
            reason = stab.divergence(value, grad_norm)
            if reason is not None:
                stab.on_divergence(t, reason, value)
                if stab.rollback and self._snap is not None:
                    self._restore()
                    stab.log(t, "rollback", to_step=self._snap["step"])
                self.n_steps_ += 1
                return
        # the schedule's factor first: a bad value raises before anything else has changed
        factor = observed_factor(sched, t, owner=_OWNER, loss=value, grad_norm=grad_norm)
        if stab is not None:
            stab.on_good(value)
            if (
                stab.rollback
                and stab.detect_divergence
                and (self._snap is None or t - self._snap["step"] >= int(stab.snapshot_every))
            ):
                self._snapshot(t)
            self._clip(all_grads, grad_norm, t)
            factor *= stab.noise_factor_
        self.factor_ = factor
        if self.generator is not None and factor > 0:
            self._perturb(groups, factor, t)
        self.base.step()
        self.n_steps_ += 1

    def _clip(self, grads: list[torch.Tensor], grad_norm: float | None, t: int) -> None:
        stab = self.stability
        assert stab is not None
        if not grads:
            return
        if stab.clip_value is not None:
            v = float(stab.clip_value)
            peak = max(float(n) for n in torch._foreach_norm(grads, ord=math.inf))
            if peak > v:
                torch._foreach_clamp_min_(grads, -v)
                torch._foreach_clamp_max_(grads, v)
                stab.log(t, "clip_value", max_abs=peak, clip_value=v)
                grad_norm = None
        if stab.clip_norm is not None:
            total = float(_global_norm(grads)) if grad_norm is None else grad_norm
            c = float(stab.clip_norm)
            if total > c:
                torch._foreach_mul_(grads, c / (total + 1e-6))
                stab.log(t, "clip_norm", norm=total, clip_norm=c)

    def _perturb(self, groups: list[Group], factor: float, t: int) -> None:
        gen = self.generator
        assert gen is not None
        stab = self.stability
        key = gen.strength
        stateful = gen.stateful
        for gi, group, ps, gs in groups:
            if not gs:
                continue
            raw = group.get(key, getattr(gen, key))
            s = gen.check_strength(raw, where=f" (param group {gi})") * factor
            if s == 0:
                continue
            if key == "rate":
                s = gen.check_strength(s, where=f" (param group {gi}, after the schedule)")
            bounded = stab is not None and stab.max_noise_ratio is not None
            fused = None if bounded or not _fusable(gen) else gen.additive(s)
            if fused is not None:  # draw and add in one pass: same bits as delta + add
                self._work.add(gs, (gi, 0), fused[0], float(fused[1]), self._streams)
                continue
            state = [self.noise_state.setdefault(p, {}) for p in ps] if stateful else [{}] * len(ps)

            def draw(fill: Any, slot: int, gs: list[torch.Tensor] = gs, gi: int = gi) -> Any:
                return self._work.draw(gs, (gi, slot), fill, self._streams)

            out = gen.delta(ps, gs, strength=s, draw=draw, state=state)
            if out is None:
                continue
            deltas, alpha = list(out[0]), float(out[1])
            if stab is not None and stab.max_noise_ratio is not None:
                limit = math.sqrt(float(stab.max_noise_ratio)) * float(_global_norm(gs))
                size = abs(alpha) * float(_global_norm(deltas))
                if size > limit:
                    alpha *= limit / size
                    stab.log(t, "noise_bound", group=gi, noise_norm=size, limit=limit)
            torch._foreach_add_(gs, deltas, alpha=alpha)

    # -- rollback ------------------------------------------------------------------------
    def _snapshot(self, t: int) -> None:
        params = self._params()
        snap = self._snap
        if snap is not None and [p.shape for p in snap["params"]] == [p.shape for p in params]:
            torch._foreach_copy_(snap["params"], [p.detach() for p in params])
        else:
            snap = {"params": [p.detach().clone() for p in params]}
        base_state = self.base.state
        snap["state"] = {
            i: clone_state(base_state[p]) for i, p in enumerate(params) if p in base_state
        }
        snap["noise"] = {
            i: clone_state(self.noise_state[p])
            for i, p in enumerate(params)
            if p in self.noise_state
        }
        snap["step"] = t
        self._snap = snap

    def _restore(self) -> None:
        snap = self._snap
        assert snap is not None
        params = self._params()
        torch._foreach_copy_([p.detach() for p in params], snap["params"])
        for i, p in enumerate(params):
            if i in snap["state"]:
                self.base.state[p] = clone_state(snap["state"][i])
            else:
                self.base.state.pop(p, None)
            if i in snap["noise"]:
                self.noise_state[p] = clone_state(snap["noise"][i])
            else:
                self.noise_state.pop(p, None)

    # -- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The base's state dict plus a ``"perturbkit"`` entry (streams, step, schedule, …).

        Like torch's, it references live tensors: ``copy.deepcopy`` it or
        ``torch.save`` it to keep a checkpoint.
        """
        sd = dict(self.base.state_dict())
        index = {p: i for i, p in enumerate(self._params())}
        sd["perturbkit"] = {
            "n_steps": self.n_steps_,
            "factor": self.factor_,
            "streams": self._streams.state_dict(),
            "noise_state": {index[p]: st for p, st in self.noise_state.items() if p in index},
            "schedule": self.schedule.state_dict() if self.schedule is not None else {},
            "stability": self.stability.state_dict() if self.stability is not None else {},
            "snapshot": self._snap,
            "generator": self.generator.to_dict() if self.generator is not None else None,
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a bare base optimizer's state dict also loads.

        Loading a plain optimizer's checkpoint starts the perturbation afresh
        (step 0, streams from this optimizer's seed).
        """
        sd = dict(state_dict)
        ours = sd.pop("perturbkit", None)
        self.base.load_state_dict(sd)
        self._work.clear()
        if ours is None:
            return
        params = self._params()

        def cast(st: dict[str, Any], p: torch.Tensor) -> dict[str, Any]:
            return {
                k: v.to(device=p.device, dtype=p.dtype if v.is_floating_point() else v.dtype)
                .detach()
                .clone()
                if isinstance(v, torch.Tensor)
                else v
                for k, v in st.items()
            }

        self.n_steps_ = int(ours["n_steps"])
        self.factor_ = float(ours.get("factor", 1.0))
        self._streams.load_state_dict(ours["streams"])
        self.noise_state = {
            params[int(i)]: cast(st, params[int(i)]) for i, st in ours["noise_state"].items()
        }
        if self.schedule is not None and ours["schedule"]:
            self.schedule.load_state_dict(ours["schedule"])
        if self.stability is not None and ours["stability"]:
            self.stability.load_state_dict(ours["stability"])
        snap = ours.get("snapshot")
        if snap is None:
            self._snap = None
        else:
            self._snap = {
                "step": int(snap["step"]),
                "params": [
                    s.to(device=p.device, dtype=p.dtype).detach().clone()
                    for s, p in zip(snap["params"], params)
                ],
                # the base's own state keeps its devices (Adam's 'step' stays on the CPU)
                "state": {int(i): clone_state(st) for i, st in snap["state"].items()},
                "noise": {int(i): cast(st, params[int(i)]) for i, st in snap["noise"].items()},
            }


def _fusable(gen: Any) -> bool:
    """Whether ``gen.additive`` speaks for ``gen.delta``: both from the same class.

    A subclass that overrides ``delta`` but inherits ``additive`` gets its own
    ``delta`` called, not the fused path.
    """
    cls = type(gen)
    owner = next((k for k in cls.__mro__ if "additive" in vars(k)), None)
    return owner is not None and "delta" in vars(owner) and cls.delta is owner.delta
