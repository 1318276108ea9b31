"""A ``torch.optim.Optimizer`` that wraps another one and shares its groups and state.

The wrapper *is* an Optimizer (LR schedulers check ``isinstance``), and its
``param_groups``, ``state`` and ``defaults`` are the base optimizer's own
objects, read through properties: a scheduler that writes ``lr`` into the
wrapper's groups writes the base's, and ``base.load_state_dict`` (which
replaces the base's lists) stays visible through the wrapper.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from perturbkit.exceptions import ParameterError

__all__ = ["WrappedOptimizer", "check_base", "clone_state", "loss_value"]


def check_base(base: Any, owner: str) -> torch.optim.Optimizer:
    """The base optimizer, or one clear line saying what was given instead."""
    if isinstance(base, type) and issubclass(base, torch.optim.Optimizer):
        raise ParameterError(
            f"The 'base' parameter of {owner} must be a torch.optim.Optimizer instance. Got the "
            f"class {base.__name__} instead; construct it first: "
            f"{base.__name__}(model.parameters(), lr=...)."
        )
    if not isinstance(base, torch.optim.Optimizer):
        raise ParameterError(
            f"The 'base' parameter of {owner} must be a torch.optim.Optimizer instance (e.g. "
            f"torch.optim.SGD(model.parameters(), lr=0.1)). Got {type(base).__name__} instead."
        )
    if isinstance(base, torch.optim.LBFGS):
        raise ParameterError(
            f"The 'base' parameter of {owner} cannot be LBFGS, which evaluates its closure "
            "many times per step; use SGD, Adam, AdamW, RMSprop or another one-gradient method."
        )
    return base


def clone_state(d: dict[Any, Any]) -> dict[Any, Any]:
    """A deep copy of one parameter's state (tensors cloned)."""
    return {
        k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
        for k, v in d.items()
    }


def loss_value(loss: Any) -> float | None:
    """A float from a loss (tensor, number or None); NaN stays NaN."""
    if loss is None:
        return None
    if isinstance(loss, torch.Tensor):
        return float(loss.detach().reshape(-1)[0]) if loss.numel() == 1 else float("nan")
    try:
        return float(loss)
    except (TypeError, ValueError):
        return None


class WrappedOptimizer(torch.optim.Optimizer):
    """Shares the base optimizer's param groups, state and defaults; subclasses add a step."""

    base: torch.optim.Optimizer

    def _bind(self, base: torch.optim.Optimizer) -> None:
        self.__dict__["base"] = base
        # Optimizer.__setstate__ installs the hook dicts and the profiled step, as unpickling
        # does, without re-adding the base's groups (which __init__ would).
        torch.optim.Optimizer.__setstate__(self, {})

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.base.param_groups = value

    @property  # type: ignore[override]
    def state(self) -> Any:
        return self.base.state

    @state.setter
    def state(self, value: Any) -> None:
        self.base.state = value

    @property  # type: ignore[override]
    def defaults(self) -> dict[str, Any]:
        return self.base.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.base.defaults = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.base.add_param_group(param_group)
        self._check_group(len(self.base.param_groups) - 1, self.base.param_groups[-1])

    def _check_group(self, index: int, group: dict[str, Any]) -> None:
        """Subclasses validate their per-group keys."""

    def _params(self) -> list[torch.Tensor]:
        """Every parameter, in state-dict order (group by group)."""
        return [p for g in self.param_groups for p in g["params"]]

    def __getstate__(self) -> dict[str, Any]:
        # everything but the hook dicts (as torch's Optimizer does; they may hold lambdas)
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_optimizer_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        torch.optim.Optimizer.__setstate__(self, {})
