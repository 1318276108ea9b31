"""scikit-learn-style parameters, shared by perturbations, gradient generators and schedules.

``__init__`` only stores its keyword arguments; :meth:`Params.get_params`
reads them back by the constructor's signature, which gives ``repr`` and
equality for free, and ``_constraints`` maps each to a constraint of
:mod:`perturbkit._validation`, checked by :meth:`Params._check_constraints`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

from perturbkit._rng import canonical
from perturbkit._validation import check_param

__all__ = ["Params", "init_param_names"]


@functools.cache
def init_param_names(cls: type) -> tuple[str, ...]:
    """The names of ``cls.__init__``'s parameters (no self, no *args/**kwargs)."""
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return tuple(
        p.name
        for p in sig.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    )


class Params:
    """Constructor arguments as the object's parameters (scikit-learn style)."""

    _constraints: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        return list(init_param_names(cls))

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given."""
        return {k: getattr(self, k) for k in self._param_names()}

    def _check_constraints(self) -> None:
        owner = type(self).__name__
        for k, c in self._constraints.items():
            check_param(owner, k, getattr(self, k), c)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and canonical(self.get_params()) == canonical(
            other.get_params()  # type: ignore[attr-defined]
        )

    __hash__ = None  # type: ignore[assignment]  # mutable (fit, state), like sklearn estimators
