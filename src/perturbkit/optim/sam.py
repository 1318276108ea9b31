"""Sharpness-aware minimisation (Foret et al. 2021): the worst-case weight perturbation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from perturbkit._validation import Interval, OneOf, check_param
from perturbkit.exceptions import ParameterError
from perturbkit.optim._wrapper import WrappedOptimizer, check_base, loss_value
from perturbkit.optim.optimizer import _global_norm
from perturbkit.optim.schedules import Schedule, as_schedule, observed_factor, require_loss

__all__ = ["SAM"]

_OWNER = "SAM"
_RHO = Interval(0, None)


class SAM(WrappedOptimizer):
    """Sharpness-aware minimisation around any base optimizer.

    Each step moves the weights to the worst case of a first-order model of
    the loss within a ball of radius ρ,
    ``e = ρ · g / ‖g‖`` (``adaptive=True``: ASAM, Kwon et al. 2021,
    ``e = ρ · θ² ⊙ g / ‖θ ⊙ g‖``), takes the gradient there, restores the
    weights exactly (from a copy: the one extra copy of the parameters SAM
    needs), and lets the base optimizer step with that gradient. ``‖·‖`` is
    the norm over all parameter groups; a group may set its own ``"rho"``.
    A schedule scales ρ step by step.

    ``step(closure)`` needs a closure that clears the gradients, runs the
    forward and backward passes and returns the loss; it is called twice
    (at θ and at θ + e), and ``step`` returns the loss at θ. For manual
    control (e.g. mixed precision) call :meth:`first_step` after a backward
    pass at θ, then a backward pass at θ + e, then :meth:`second_step`.

    Args:
        base: the optimizer that takes the step (e.g. ``SGD(..., momentum=0.9)``).
        rho: the neighbourhood radius ρ, >= 0 (0: the base optimizer alone).
        adaptive: ASAM's scale-invariant neighbourhood.
        schedule: scales ρ step by step.
    """

    def __init__(
        self,
        base: torch.optim.Optimizer,
        *,
        rho: float = 0.05,
        adaptive: bool = False,
        schedule: Schedule | Callable[[int], float] | None = None,
    ) -> None:
        base = check_base(base, _OWNER)
        check_param(_OWNER, "rho", rho, _RHO)
        check_param(_OWNER, "adaptive", adaptive, OneOf((True, False)))
        self._bind(base)
        self.rho = rho
        self.adaptive = adaptive
        self.schedule = as_schedule(schedule, owner=_OWNER)
        self.n_steps_ = 0
        self._moved: list[torch.Tensor] | None = None
        self._copies: list[torch.Tensor] | None = None
        for i, group in enumerate(self.param_groups):
            self._check_group(i, group)

    def _check_group(self, index: int, group: dict[str, Any]) -> None:
        if "rho" in group:
            check_param(f"{_OWNER} (param group {index})", "rho", group["rho"], _RHO)

    def __repr__(self) -> str:
        return (
            f"{_OWNER}(base={type(self.base).__name__}, rho={self.rho!r}, "
            f"adaptive={self.adaptive!r}, schedule={self.schedule!r})"
        )

    @torch.no_grad()
    def first_step(self, *, loss: Any = None) -> None:
        """Move to θ + e using the current gradients (at θ); keeps a copy of θ."""
        if self._moved is not None:
            raise RuntimeError("SAM.first_step was called twice without second_step")
        sched, value = self.schedule, loss_value(loss)
        require_loss(sched, value, owner=_OWNER)
        factor = observed_factor(sched, self.n_steps_, owner=_OWNER, loss=value)
        groups = []
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            groups.append((group, ps, [p.grad for p in ps]))
        moved = [p for _, ps, _ in groups for p in ps]
        all_grads = [g for *_, gs in groups for g in gs]
        if self.adaptive:
            norm = float(_global_norm(torch._foreach_mul(moved, all_grads))) if moved else 0.0
        else:
            norm = float(_global_norm(all_grads))
        copies = self._copies
        if copies is not None and [c.shape for c in copies] == [p.shape for p in moved]:
            torch._foreach_copy_(copies, [p.detach() for p in moved])
        else:
            copies = [p.detach().clone() for p in moved]
        self._copies, self._moved = copies, moved
        for group, ps, gs in groups:
            if not ps:
                continue
            scale = float(group.get("rho", self.rho)) * factor / (norm + 1e-12)
            if scale == 0:
                continue
            if self.adaptive:
                e = torch._foreach_mul(ps, ps)
                torch._foreach_mul_(e, gs)
                torch._foreach_add_(ps, e, alpha=scale)
            else:
                torch._foreach_add_(ps, gs, alpha=scale)

    @torch.no_grad()
    def second_step(self) -> None:
        """Restore θ exactly and let the base optimizer step with the gradient at θ + e."""
        if self._moved is None or self._copies is None:
            raise RuntimeError("SAM.second_step was called without first_step")
        torch._foreach_copy_([p.detach() for p in self._moved], self._copies)
        self._moved = None
        self.base.step()
        self.n_steps_ += 1

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One SAM step; ``closure`` zeroes the grads, runs forward and backward, returns loss."""
        if closure is None:
            raise ParameterError(
                f"{_OWNER}.step needs a closure that zeroes the gradients, runs the forward and "
                "backward passes and returns the loss (it is evaluated at θ and at θ + e)."
            )
        with torch.enable_grad():
            loss = closure()
        self.first_step(loss=loss)
        try:
            with torch.enable_grad():
                closure()
        finally:  # θ comes back exactly, also when the second closure raises
            with torch.no_grad():
                torch._foreach_copy_([p.detach() for p in self._moved or []], self._copies or [])
            self._moved = None
        with torch.no_grad():
            self.base.step()
        self.n_steps_ += 1
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = dict(self.base.state_dict())
        sd["perturbkit"] = {
            "n_steps": self.n_steps_,
            "schedule": self.schedule.state_dict() if self.schedule is not None else {},
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        ours = sd.pop("perturbkit", None)
        self.base.load_state_dict(sd)
        if ours is None:
            return
        self.n_steps_ = int(ours["n_steps"])
        if self.schedule is not None and ours["schedule"]:
            self.schedule.load_state_dict(ours["schedule"])
