"""Stochastic gradient Langevin dynamics (Welling & Teh 2011)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from perturbkit._validation import Interval, check_param
from perturbkit.optim._streams import TorchStreams, Workspace
from perturbkit.optim._wrapper import loss_value
from perturbkit.optim.schedules import Schedule, as_schedule, observed_factor, require_loss

__all__ = ["SGLD"]

_OWNER = "SGLD"
_CONSTRAINTS = {
    "lr": Interval(0, None, closed_low=False),
    "temperature": Interval(0, None),
    "n_data": Interval(0, None, closed_low=False),
    "weight_decay": Interval(0, None),
}


def _normal(buf: torch.Tensor, gen: torch.Generator) -> None:
    buf.normal_(generator=gen)


class SGLD(torch.optim.Optimizer):
    """Stochastic gradient Langevin dynamics: gradient descent plus calibrated Gaussian noise.

    Each step is ::

        θ ← θ − lr · (∇L(θ) + weight_decay · θ) + √(2 · lr · temperature / n_data) · s(t) · ξ

    with ξ ~ N(0, I) and ``s`` the schedule (1 without one). With ``L`` the
    mean loss over ``n_data`` training examples (as usual in training) and
    ``weight_decay = prior precision / n_data``, the iterates sample the
    posterior ∝ exp(−n_data · L) (at ``temperature=1``; the "cold posterior"
    uses < 1). With ``n_data=1`` the loss is the full negative log posterior U,
    and this is Welling & Teh's update with step size ε = 2·lr:
    ``θ ← θ − (ε/2)∇U + N(0, ε)``. For the unit Gaussian, U = ½θ², the
    chain's stationary variance is ``1/(1 − ε/4) = 1/(1 − lr/2)`` (the
    discretisation bias of a finite step). LR schedulers work as for SGD, and
    the noise follows the current ``lr`` (decreasing steps, as in the paper).
    A schedule ``s`` that anneals to 0 turns SGLD into SGD.

    Randomness: a ``torch.Generator`` per device seeded from ``seed`` (see
    :class:`~perturbkit.optim.PerturbedOptimizer`); the noise is drawn in the
    parameters' dtype on their device.

    Args:
        params: parameters or param groups; a group may set its own ``lr``,
            ``temperature``, ``n_data`` and ``weight_decay``.
        lr: the learning rate, > 0.
        temperature: posterior temperature, >= 0 (0: plain gradient descent).
        n_data: the number of training examples the mean loss is over, > 0.
        weight_decay: L2 coefficient (a Gaussian prior of precision
            ``weight_decay · n_data``), >= 0.
        schedule: scales the noise standard deviation step by step.
        seed: an int, a root SeedSequence, a ``torch.Generator`` or None.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        *,
        temperature: float = 1.0,
        n_data: float = 1,
        weight_decay: float = 0.0,
        schedule: Schedule | Callable[[int], float] | None = None,
        seed: Any = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "temperature": temperature,
            "n_data": n_data,
            "weight_decay": weight_decay,
        }
        for k, v in defaults.items():
            check_param(_OWNER, k, v, _CONSTRAINTS[k])
        self._ready = False
        super().__init__(params, defaults)
        self.schedule = as_schedule(schedule, owner=_OWNER)
        self._streams = TorchStreams(seed, owner=_OWNER)
        self._work = Workspace()
        self.n_steps_ = 0
        self._ready = True
        for i, group in enumerate(self.param_groups):
            self._check_group(i, group)

    def __getstate__(self) -> dict[str, Any]:
        # torch keeps only defaults, state and groups; keep the streams and schedule too
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_optimizer_")}

    @property
    def seed_(self) -> int | None:
        return self._streams.root

    def _check_group(self, index: int, group: dict[str, Any]) -> None:
        for k, c in _CONSTRAINTS.items():
            check_param(f"{_OWNER} (param group {index})", k, group[k], c)
        self._streams.check_devices(group["params"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        if getattr(self, "_ready", False):
            self._check_group(len(self.param_groups) - 1, self.param_groups[-1])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Langevin step; ``closure`` (optional) recomputes and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sched, value = self.schedule, loss_value(loss)
        require_loss(sched, value, owner=_OWNER)
        factor = observed_factor(sched, self.n_steps_, owner=_OWNER, loss=value)
        self._langevin(factor)
        self.n_steps_ += 1
        return loss

    def _langevin(self, factor: float) -> None:
        for gi, group in enumerate(self.param_groups):
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                continue
            gs = [p.grad for p in ps]
            lr, wd = float(group["lr"]), float(group["weight_decay"])
            if wd != 0:
                gs = torch._foreach_add(gs, ps, alpha=wd)
            torch._foreach_add_(ps, gs, alpha=-lr)
            std = math.sqrt(2.0 * lr * float(group["temperature"]) / float(group["n_data"]))
            std *= factor
            if std > 0:
                noise = self._work.draw(ps, (gi, 0), _normal, self._streams)
                torch._foreach_add_(ps, noise, alpha=std)

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state dict plus a ``"perturbkit"`` entry (streams, step, schedule)."""
        sd = super().state_dict()
        sd["perturbkit"] = {
            "n_steps": self.n_steps_,
            "streams": self._streams.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else {},
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        ours = sd.pop("perturbkit", None)
        super().load_state_dict(sd)
        self._work.clear()
        if ours is None:
            return
        self.n_steps_ = int(ours["n_steps"])
        self._streams.load_state_dict(ours["streams"])
        if self.schedule is not None and ours["schedule"]:
            self.schedule.load_state_dict(ours["schedule"])
