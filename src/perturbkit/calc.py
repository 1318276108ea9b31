"""The perturbation calculator: small closed-form answers about perturbations.

Every function validates its inputs at the boundary (one-line
:class:`~perturbkit.exceptions.ParameterError` naming the parameter, the value
received and what is allowed) and returns a small frozen dataclass with
``to_dict()`` (JSON-ready values: floats, ints, bools, strings, lists and
``None`` where a quantity is undefined) and ``summary()`` (one human line).

Formulas and units
------------------

:func:`drop` — first-order change of one prediction probability::

    p' = clip(p - ε·s, 0, 1)
    absolute_change     = p' - p                  (probability units; negative = drop)
    relative_change_pct = 100 · (p' - p) / p      (percent of p; None when p = 0)

  ``p`` is the clean probability of the predicted class, in [0, 1]. ``ε`` is the
  perturbation magnitude, in the unit of the perturbation (for example σ as a
  fraction of each feature's standard deviation), ``ε ≥ 0``. ``s`` is the
  sensitivity: probability lost per unit of magnitude, ``-dp/dε`` (any finite
  real; negative means the prediction grows). ``below_threshold`` is
  ``p' < threshold``; ``warning`` is set when ``p'`` falls below the threshold
  while ``p`` was not below it.

:func:`taylor` — first-order Taylor estimate of a user formula ``f``::

    f(x + ε) ≈ f(x) + ε·f'(x)
    absolute_error     = |f(x + ε) - (f(x) + ε·f'(x))|     (units of f)
    relative_error_pct = 100 · absolute_error / |f(x + ε)|  (None when f(x + ε) = 0)

  ``x`` and ``ε ≥ 0`` are in the units of the formula's variable. For
  ``f(x) = x**2``, ``x = 2``, ``ε = 0.01``: estimate 4.04, true 4.0401, error 1e-4
  (the second-order term ``ε²·f''(x)/2``).

:func:`gradient_change` — how far the gradient of a scalar formula moves::

    Δ∇f = ∇f(x + δ) - ∇f(x)        (one entry per variable, units of f per unit of that variable)

:func:`norm` — sizes of a perturbation vector ``v`` (units of its entries)::

    L1 = Σ|vᵢ|,   L2 = sqrt(Σ vᵢ²),   L∞ = max |vᵢ|

:func:`fgsm` — the fast gradient sign step (Goodfellow et al., 2015)::

    δ = ε · sign(g),   ‖δ‖∞ = ε (0 if g = 0),   ‖δ‖₂ = ε · sqrt(#{i : gᵢ ≠ 0})

  ``ε ≥ 0`` is in input units; ``g`` is the gradient of the loss with respect
  to the input (only its signs matter; ``sign(0) = 0``).

:func:`from_run` — a measured sweep beside the first-order formula::

    s        = (m(0) - m(ε₁)) / ε₁      (metric lost per unit magnitude)
    estimate = m(0) - ε·s

  ``m`` is a metric of a :class:`perturbkit.SweepResult` (mean over repeats) as
  a function of the magnitude, ``m(0)`` the clean baseline and ``ε₁`` the
  smallest positive magnitude of the run's grid: the sensitivity is the slope
  of the first grid segment. The measured value at ``ε`` is interpolated
  linearly between grid magnitudes when ``ε`` is not on the grid. For
  ``ε ≤ ε₁`` the estimate therefore equals the (interpolated) measurement; the
  comparison tells something for ``ε > ε₁``, where the gap between the two is
  the curvature the first-order formula misses.

Formula parsing is safe: the text is checked character by character and token
by token (only numbers, ``+ - * / ** ^ ( ) ,``, the declared variables and the
functions ``sin cos tan exp log sqrt tanh abs`` and constants ``pi E``; no
attribute access, no ``__``, no keywords), then parsed by SymPy's
``parse_expr`` with a restricted namespace and no builtins, unevaluated, and
rebuilt with a guard so that exact integer arithmetic (``9**9**9``) cannot
exhaust time or memory. Python ``eval`` never sees the raw text.
"""

from __future__ import annotations

import io
import keyword
import math
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from perturbkit._validation import Interval, check_param
from perturbkit.exceptions import ParameterError

if TYPE_CHECKING:  # pragma: no cover
    import sympy

__all__ = [
    "DropResult",
    "FgsmResult",
    "GradientChangeResult",
    "NormResult",
    "RunComparison",
    "TaylorResult",
    "drop",
    "fgsm",
    "from_run",
    "gradient_change",
    "norm",
    "taylor",
]

# --------------------------------------------------------------------------- results


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


class _Result:
    """Shared ``to_dict`` for the frozen result dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (lists, floats, ``None`` where undefined)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def _g(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}g}"


@dataclass(frozen=True)
class DropResult(_Result):
    """Result of :func:`drop`; see the module docstring for the formula."""

    p: float
    epsilon: float
    sensitivity: float
    threshold: float
    perturbed: float
    absolute_change: float
    relative_change_pct: float | None
    clamped: bool
    below_threshold: bool
    warning: str | None

    def summary(self) -> str:
        """One human line."""
        rel = "n/a" if self.relative_change_pct is None else f"{self.relative_change_pct:+.2f}%"
        line = (
            f"p = {self.p:.4g} -> {self.perturbed:.4g} at ε = {self.epsilon:g}, "
            f"s = {self.sensitivity:g} (change {self.absolute_change:+.4g}, {rel})"
        )
        if self.clamped:
            line += ", clamped to [0, 1]"
        return line + (f"; {self.warning}" if self.warning else "")


@dataclass(frozen=True)
class TaylorResult(_Result):
    """Result of :func:`taylor`; see the module docstring for the formula."""

    expression: str
    derivative_expression: str
    variable: str
    x: float
    epsilon: float
    value: float
    derivative: float
    estimate: float
    true_value: float
    absolute_error: float
    relative_error_pct: float | None

    def summary(self) -> str:
        """One human line."""
        v, e = self.variable, self.epsilon
        return (
            f"f({v}) = {self.expression}: f({self.x:g} + {e:g}) ≈ {self.value:.6g} + "
            f"{e:g}·{self.derivative:.6g} = {self.estimate:.6g}; true {self.true_value:.6g} "
            f"(error {self.absolute_error:.3g}, {_g(self.relative_error_pct, 3)}%)"
        )


@dataclass(frozen=True)
class GradientChangeResult(_Result):
    """Result of :func:`gradient_change`: ∇f at ``x`` and at ``x + delta``, and the change."""

    expression: str
    variables: tuple[str, ...]
    x: tuple[float, ...]
    delta: tuple[float, ...]
    gradient: tuple[float, ...]
    gradient_perturbed: tuple[float, ...]
    change: tuple[float, ...]
    change_l2: float

    def summary(self) -> str:
        """One human line."""

        def vec(v: tuple[float, ...]) -> str:
            return "[" + ", ".join(f"{a:.4g}" for a in v) + "]"

        return (
            f"∇f = {vec(self.gradient)} -> {vec(self.gradient_perturbed)}; "
            f"change {vec(self.change)} (L2 {self.change_l2:.4g}) for f = {self.expression}"
        )


@dataclass(frozen=True)
class NormResult(_Result):
    """Result of :func:`norm`: the L1, L2 and L∞ norms of a vector of ``n`` entries."""

    n: int
    l1: float
    l2: float
    linf: float

    def summary(self) -> str:
        """One human line."""
        return f"n = {self.n}: L1 = {self.l1:.6g}, L2 = {self.l2:.6g}, L∞ = {self.linf:.6g}"


@dataclass(frozen=True)
class FgsmResult(_Result):
    """Result of :func:`fgsm`: the step ``ε·sign(g)`` and its norms."""

    epsilon: float
    sign: tuple[int, ...]
    perturbation: tuple[float, ...]
    linf: float
    l2: float
    l1: float

    def summary(self) -> str:
        """One human line."""
        shown = ", ".join(f"{v:g}" for v in self.perturbation[:6])
        more = ", …" if len(self.perturbation) > 6 else ""
        return (
            f"δ = ε·sign(g) = [{shown}{more}] (n = {len(self.perturbation)}); "
            f"L∞ = {self.linf:g}, L2 = {self.l2:.4g}"
        )


@dataclass(frozen=True)
class RunComparison(_Result):
    """Result of :func:`from_run`: a sweep's measurement beside the first-order estimate."""

    perturbation: str
    metric: str
    magnitude: float
    measured: float
    interpolated: bool
    baseline: float
    sensitivity: float
    sensitivity_magnitude: float
    estimate: float
    difference: float
    grid_magnitudes: tuple[float, ...]
    grid_values: tuple[float, ...]

    def summary(self) -> str:
        """One human line."""
        how = "interpolated" if self.interpolated else "on the grid"
        return (
            f"{self.perturbation} {self.metric} at ε = {self.magnitude:g}: measured "
            f"{self.measured:.4g} ({how}), formula {self.baseline:.4g} - {self.magnitude:g}·"
            f"{self.sensitivity:.4g} = {self.estimate:.4g} (difference {self.difference:+.3g}; "
            f"s from ε₁ = {self.sensitivity_magnitude:g})"
        )


# --------------------------------------------------------------------------- validation


def _short(value: Any, limit: int = 80) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fail(owner: str, name: str, allowed: str, value: Any) -> ParameterError:
    return ParameterError(
        f"The '{name}' parameter of {owner} must be {allowed}. Got {_short(value)} instead."
    )


def _real(
    owner: str, name: str, value: Any, low: float | None = None, high: float | None = None
) -> float:
    check_param(owner, name, value, Interval(low, high))
    return float(value)


def _vector(owner: str, name: str, value: Any, *, allow_scalar: bool = False) -> np.ndarray:
    allowed = "a non-empty 1-D sequence of finite numbers"
    if allow_scalar:
        allowed = "a finite number or " + allowed
    if value is None or isinstance(value, (str, bytes, dict)):
        raise _fail(owner, name, allowed, value)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise _fail(owner, name, allowed, value) from None
    if arr.dtype.kind not in "iuf":
        raise _fail(owner, name, allowed, value)
    if arr.ndim == 0 and allow_scalar:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise _fail(owner, name, allowed, value)
    arr = arr.astype(float)
    if not np.isfinite(arr).all():
        raise _fail(owner, name, allowed, value)
    return arr


# --------------------------------------------------------------------------- drop


def drop(p: float, epsilon: float, sensitivity: float, *, threshold: float = 0.5) -> DropResult:
    """First-order drop of a prediction probability: ``p' = clip(p - ε·s, 0, 1)``.

    Args:
        p: clean probability of the predicted class, in [0, 1].
        epsilon: perturbation magnitude ``ε ≥ 0``, in the perturbation's unit.
        sensitivity: ``s = -dp/dε``, probability lost per unit of magnitude (any finite real).
        threshold: decision threshold in [0, 1]; a warning is set when ``p'``
            falls below it from at or above it.

    Example:
        >>> drop(0.9, 0.1, 2.0).perturbed
        0.7
    """
    owner = "calc.drop"
    p = _real(owner, "p", p, 0.0, 1.0)
    epsilon = _real(owner, "epsilon", epsilon, 0.0)
    sensitivity = _real(owner, "sensitivity", sensitivity)
    threshold = _real(owner, "threshold", threshold, 0.0, 1.0)
    raw = p - epsilon * sensitivity
    perturbed = min(1.0, max(0.0, raw))
    change = perturbed - p
    below = perturbed < threshold
    warning = None
    if below and p >= threshold:
        warning = (
            f"the perturbed prediction {perturbed:.4g} falls below the threshold {threshold:g} "
            f"(was {p:.4g}): the decision flips"
        )
    return DropResult(
        p=p,
        epsilon=epsilon,
        sensitivity=sensitivity,
        threshold=threshold,
        perturbed=perturbed,
        absolute_change=change,
        relative_change_pct=None if p == 0 else 100.0 * change / p,
        clamped=raw != perturbed,
        below_threshold=below,
        warning=warning,
    )


# --------------------------------------------------------------------------- safe formulas

_FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "abs")
_CONSTANTS = ("pi", "E")
# Names the parser's namespace uses; a variable may not shadow them.
_RESERVED = frozenset(
    _FUNCTIONS + _CONSTANTS + ("Abs", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Symbol")
)
_MAX_LENGTH = 500
_MAX_NUMBER_CHARS = 32
_MAX_POWER_DIGITS = 10_000  # digits of one exact power
_MAX_TOTAL_DIGITS = 50_000  # digits of all exact powers together
_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9_ \t+\-*/^().,]*")
_FORBIDDEN = re.compile(
    r"__|\b(lambda|import|exec|eval|compile|open|getattr|setattr|delattr|globals|locals|vars"
    r"|builtins|os|sys|subprocess)\b"
)
_NUMBER = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_OPS = frozenset({"+", "-", "*", "/", "**", "^", "(", ")", ","})
_VARIABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_FUNCS_TEXT = ", ".join(_FUNCTIONS) + ", pi, E"


class _TooLarge(Exception):
    pass


def _variable_names(owner: str, name: str, value: Any) -> tuple[str, ...]:
    allowed = (
        "a variable name (a letter, then letters, digits or '_', not a function or constant name)"
    )
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, Sequence) or len(names) == 0:
        raise _fail(owner, name, allowed + " or a non-empty list of them", value)
    for n in names:
        if (
            not isinstance(n, str)
            or not _VARIABLE.fullmatch(n)
            or keyword.iskeyword(n)
            or "__" in n
            or n in _RESERVED
        ):
            raise _fail(owner, name, allowed, value)
    if len(set(names)) != len(names):
        raise _fail(owner, name, "a list of distinct variable names", value)
    return tuple(names)


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _scan(owner: str, text: str, variables: tuple[str, ...] | None) -> tuple[str, ...]:
    """Check the formula token by token; return the variable names it uses."""

    def bad(reason: str) -> ParameterError:
        over = "" if variables is None else " in " + ", ".join(variables)
        return ParameterError(
            f"The 'expression' parameter of {owner} must be a formula{over} built from numbers, "
            f"+ - * / ** ^ ( ) and {_FUNCS_TEXT} ({reason}). Got {_short(text)} instead."
        )

    m = _FORBIDDEN.search(text)
    if m:
        raise bad(f"{m.group(0)!r} is not allowed")
    if not _ALLOWED_CHARS.fullmatch(text):
        ch = next(c for c in text if not _ALLOWED_CHARS.fullmatch(c))
        raise bad(f"character {ch!r} is not allowed")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        raise bad("it is malformed; check the parentheses") from None
    used: list[str] = []
    for i, tok in enumerate(tokens):
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NUMBER:
            if not _NUMBER.fullmatch(tok.string) or len(tok.string) > _MAX_NUMBER_CHARS:
                raise bad(f"number {tok.string!r} is not allowed; write plain decimals")
        elif tok.type == tokenize.OP:
            if tok.string == ".":
                raise bad("attribute access with '.' is not allowed")
            if tok.string not in _OPS:
                raise bad(f"operator {tok.string!r} is not allowed")
        elif tok.type == tokenize.NAME:
            word = tok.string
            nxt = tokens[i + 1].string if i + 1 < len(tokens) else ""
            if keyword.iskeyword(word):
                raise bad(f"keyword {word!r} is not allowed")
            if nxt == "(":
                if word not in _FUNCTIONS:
                    raise bad(f"unknown function {word!r}")
            elif word in _FUNCTIONS:
                raise bad(f"function {word!r} needs an argument in parentheses")
            elif word in _CONSTANTS:
                pass
            elif variables is not None:
                if word not in variables:
                    raise bad(f"unknown name {word!r}")
                used.append(word)
            else:
                if not _VARIABLE.fullmatch(word) or word in _RESERVED:
                    raise bad(f"name {word!r} cannot be a variable")
                used.append(word)
        else:
            raise bad(f"{tok.string!r} is not allowed")
    return tuple(sorted(set(used), key=_natural_key))


def _log10_size(expr: sympy.Expr) -> float:
    """Decimal digits of the exact rational numbers inside ``expr`` (0, 1, -1 cost nothing)."""
    import sympy

    total = 0.0
    for atom in expr.atoms(sympy.Rational):
        p, q = abs(int(atom.p)), int(atom.q)
        total += (math.log10(p) if p > 1 else 0.0) + (math.log10(q) if q > 1 else 0.0)
    return total


def _rebuild(expr: sympy.Basic, spent: list[float]) -> sympy.Basic:
    """Evaluate an unevaluated tree bottom-up, refusing exact powers that would be huge."""
    import sympy

    if expr.is_Atom:
        return expr
    args = [_rebuild(a, spent) for a in expr.args]
    if expr.func is sympy.Pow:
        base, power = args
        if power.is_Rational and abs(power) > 1:
            try:
                size = abs(float(power)) * _log10_size(base)
            except OverflowError:
                size = math.inf
            spent[0] += size
            if size > _MAX_POWER_DIGITS or spent[0] > _MAX_TOTAL_DIGITS:
                raise _TooLarge
    return expr.func(*args)


def _parse(
    owner: str, expression: Any, variables: tuple[str, ...] | None
) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
    """Safely turn ``expression`` into a SymPy expression of real ``variables``."""
    import sympy
    from sympy.parsing.sympy_parser import auto_number, convert_xor, parse_expr

    if not isinstance(expression, str) or not expression.strip():
        raise _fail(owner, "expression", "a non-empty string such as 'x**2 + sin(x)'", expression)
    text = expression.strip()
    if len(text) > _MAX_LENGTH:
        raise _fail(owner, "expression", f"a formula of at most {_MAX_LENGTH} characters", text)
    names = _scan(owner, text, variables)
    if variables is None:
        if not names:
            raise _fail(owner, "expression", "a formula with at least one variable", text)
        variables = names
    symbols = {n: sympy.Symbol(n, real=True) for n in variables}
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "Integer": sympy.Integer,
        "Float": sympy.Float,
        "Rational": sympy.Rational,
        "Add": sympy.Add,
        "Mul": sympy.Mul,
        "Pow": sympy.Pow,
        "sin": sympy.sin,
        "cos": sympy.cos,
        "tan": sympy.tan,
        "exp": sympy.exp,
        "log": sympy.log,
        "sqrt": sympy.sqrt,
        "tanh": sympy.tanh,
        "Abs": sympy.Abs,
        "pi": sympy.pi,
        "E": sympy.E,
    }
    # 'abs' -> 'Abs' so that the unevaluated parse also holds for it (tokens are checked above).
    source = re.sub(r"\babs\b", "Abs", text)
    try:
        raw = parse_expr(
            source,
            local_dict=dict(symbols),
            global_dict=namespace,
            transformations=(auto_number, convert_xor),
            evaluate=False,
        )
    except Exception as exc:  # any failure of the parser means malformed input
        reason = " ".join(str(exc).split())[:60] or type(exc).__name__
        raise _fail(
            owner, "expression", f"a well-formed formula ({reason}); write 2*x, not 2x", text
        ) from None
    if not isinstance(raw, sympy.Expr):
        raise _fail(owner, "expression", "a single scalar formula", text)
    try:
        expr = _rebuild(raw, [0.0])
    except _TooLarge:
        raise _fail(
            owner,
            "expression",
            f"a formula whose exact powers stay under {_MAX_POWER_DIGITS:,} digits",
            text,
        ) from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        reason = " ".join(str(exc).split())[:60] or type(exc).__name__
        raise _fail(owner, "expression", f"a well-formed formula ({reason})", text) from None
    if not isinstance(expr, sympy.Expr) or not expr.free_symbols <= set(symbols.values()):
        raise _fail(owner, "expression", "a scalar formula of " + ", ".join(variables), text)
    return expr, tuple(symbols[n] for n in variables)


def _number(expr: sympy.Expr, at: dict[sympy.Symbol, sympy.Float]) -> float | None:
    """``expr`` at the point, as a finite real float, or ``None`` when it is not one."""
    import sympy

    try:
        value = expr.xreplace(at).evalf(30) if at else expr.evalf(30)
        c = complex(value)
    except (TypeError, ValueError, ArithmeticError, sympy.SympifyError):
        return None
    if not (math.isfinite(c.real) and math.isfinite(c.imag)):
        return None
    if abs(c.imag) > 1e-12 * max(1.0, abs(c.real)):
        return None
    return c.real


def _hp(value: float) -> sympy.Float:
    import sympy

    return sympy.Float(value, 30)


def _not_finite(owner: str, name: str, what: str, value: Any) -> ParameterError:
    return _fail(owner, name, f"a point where {what} is a finite real number", value)


# --------------------------------------------------------------------------- taylor


def taylor(expression: str, x: float, epsilon: float, *, variable: str = "x") -> TaylorResult:
    """First-order Taylor estimate ``f(x + ε) ≈ f(x) + ε·f'(x)`` beside the true value.

    Args:
        expression: the formula of ``f`` in ``variable``, e.g. ``"x**2"`` or
            ``"tanh(3*x) + 0.1*x^2"``; allowed: numbers, ``+ - * / ** ^ ( )``,
            sin, cos, tan, exp, log, sqrt, tanh, abs, pi, E.
        x: the point (finite real).
        epsilon: the step ``ε ≥ 0``, in the unit of ``variable``.
        variable: the name of the variable.

    Example:
        >>> r = taylor("x**2", 2, 0.01)
        >>> round(r.estimate, 10), round(r.true_value, 10)
        (4.04, 4.0401)
    """
    owner = "calc.taylor"
    if not isinstance(variable, str):
        raise _fail(owner, "variable", "a variable name such as 'x'", variable)
    (name,) = _variable_names(owner, "variable", variable)
    x = _real(owner, "x", x)
    epsilon = _real(owner, "epsilon", epsilon, 0.0)
    expr, (sym,) = _parse(owner, expression, (name,))
    import sympy

    deriv = sympy.diff(expr, sym)
    xs, eps = _hp(x), _hp(epsilon)
    value = _number(expr, {sym: xs})
    if value is None:
        raise _not_finite(owner, "x", f"f({name}) = {expr}", x)
    slope = _number(deriv, {sym: xs})
    if slope is None:
        raise _not_finite(owner, "x", f"the derivative {deriv}", x)
    true = _number(expr, {sym: xs + eps})
    if true is None:
        raise _not_finite(
            owner, "epsilon", f"f({name} + epsilon) = {expr} at {name} = {x:g}", epsilon
        )
    estimate = value + epsilon * slope
    # The error in higher precision, so that 1e-4 does not come back as 9.99999e-05.
    hp_value = expr.xreplace({sym: xs}).evalf(30)
    hp_estimate = hp_value + eps * deriv.xreplace({sym: xs}).evalf(30)
    hp_err = _number(sympy.Abs(expr.xreplace({sym: xs + eps}).evalf(30) - hp_estimate), {})
    error = abs(true - estimate) if hp_err is None else hp_err
    if not all(math.isfinite(v) for v in (estimate, error)):
        raise _fail(owner, "epsilon", "small enough that the estimate stays finite", epsilon)
    return TaylorResult(
        expression=str(expr),
        derivative_expression=str(deriv),
        variable=name,
        x=x,
        epsilon=epsilon,
        value=value,
        derivative=slope,
        estimate=estimate,
        true_value=true,
        absolute_error=error,
        relative_error_pct=None if true == 0 else 100.0 * error / abs(true),
    )


# --------------------------------------------------------------------------- gradient_change


def gradient_change(
    expression: str,
    x: float | Sequence[float],
    delta: float | Sequence[float],
    *,
    variables: str | Sequence[str] | None = None,
) -> GradientChangeResult:
    """``∇f(x + δ) - ∇f(x)`` for a scalar formula of one or more variables.

    Args:
        expression: the formula, e.g. ``"x*y + sin(x)"`` (same grammar as :func:`taylor`).
        x: the point, one finite number per variable.
        delta: the perturbation ``δ``, one finite number per variable (any sign).
        variables: the variable names in the order of ``x``; by default the
            names used in the formula, in natural order (``x1, x2, …, x10``).

    Example:
        >>> gradient_change("x**2 + y**2", [1, 2], [0.1, 0]).change
        (0.2, 0.0)
    """
    owner = "calc.gradient_change"
    names = None if variables is None else _variable_names(owner, "variables", variables)
    expr, symbols = _parse(owner, expression, names)
    n = len(symbols)
    point = _vector(owner, "x", x, allow_scalar=True)
    step = _vector(owner, "delta", delta, allow_scalar=True)
    order = ", ".join(s.name for s in symbols)
    if point.size != n:
        raise _fail(owner, "x", f"{n} number(s), one per variable ({order})", x)
    if step.size != n:
        raise _fail(owner, "delta", f"{n} number(s), one per variable ({order})", delta)
    import sympy

    grads = [sympy.diff(expr, s) for s in symbols]
    at = {s: _hp(float(v)) for s, v in zip(symbols, point)}
    moved = {s: _hp(float(v)) + _hp(float(d)) for s, v, d in zip(symbols, point, step)}
    before: list[float] = []
    after: list[float] = []
    change: list[float] = []
    for s, g in zip(symbols, grads):
        a = _number(g, at)
        if a is None:
            raise _not_finite(owner, "x", f"df/d{s.name} = {g}", x)
        b = _number(g, moved)
        if b is None:
            raise _not_finite(owner, "delta", f"df/d{s.name} = {g} at x + delta", delta)
        d = _number(g.xreplace(moved).evalf(30) - g.xreplace(at).evalf(30), {})
        before.append(a)
        after.append(b)
        change.append((b - a) if d is None else d + 0.0)
    return GradientChangeResult(
        expression=str(expr),
        variables=tuple(s.name for s in symbols),
        x=tuple(float(v) for v in point),
        delta=tuple(float(v) for v in step),
        gradient=tuple(before),
        gradient_perturbed=tuple(after),
        change=tuple(change),
        change_l2=_norms(np.asarray(change, dtype=float))[1],
    )


# --------------------------------------------------------------------------- norms and FGSM


def _norms(v: np.ndarray) -> tuple[float, float, float]:
    """(L1, L2, L∞) without overflow in the intermediate squares."""
    a = np.abs(v)
    linf = float(a.max())
    if linf == 0.0:
        return 0.0, 0.0, 0.0
    scaled = a / linf
    return linf * float(scaled.sum()), linf * float(np.sqrt(np.dot(scaled, scaled))), linf


def norm(vector: Sequence[float]) -> NormResult:
    """The L1, L2 and L∞ norms of a vector (in the units of its entries).

    Example:
        >>> round(norm([0.01, -0.02, 0.03]).l2, 6)
        0.037417
    """
    v = _vector("calc.norm", "vector", vector)
    l1, l2, linf = _norms(v)
    if not (math.isfinite(l1) and math.isfinite(l2)):
        raise _fail("calc.norm", "vector", "a vector whose norms fit in a float", vector)
    return NormResult(n=int(v.size), l1=l1, l2=l2, linf=linf)


def fgsm(epsilon: float, gradient: Sequence[float]) -> FgsmResult:
    """The fast gradient sign step ``δ = ε·sign(g)`` and its norms.

    Args:
        epsilon: the step size ``ε ≥ 0``, in input units (the L∞ budget).
        gradient: the loss gradient with respect to the input, a non-empty 1-D
            sequence of finite numbers; only its signs matter (``sign(0) = 0``).

    Example:
        >>> fgsm(0.05, [0.3, -2.0, 1e-4]).perturbation
        (0.05, -0.05, 0.05)
    """
    epsilon = _real("calc.fgsm", "epsilon", epsilon, 0.0)
    g = _vector("calc.fgsm", "gradient", gradient)
    sign = np.sign(g).astype(int)
    delta = epsilon * sign.astype(float) + 0.0  # + 0.0 turns -0.0 into 0.0
    l1, l2, linf = _norms(delta)
    if not (math.isfinite(l1) and math.isfinite(l2)):
        raise _fail("calc.fgsm", "epsilon", "small enough that the norms fit in a float", epsilon)
    return FgsmResult(
        epsilon=epsilon,
        sign=tuple(int(s) for s in sign),
        perturbation=tuple(float(d) for d in delta),
        linf=linf,
        l2=l2,
        l1=l1,
    )


# --------------------------------------------------------------------------- from_run


def from_run(
    result: Any, perturbation: str, magnitude: float, *, metric: str = "accuracy"
) -> RunComparison:
    """A sweep's measured metric at ``magnitude`` beside the first-order estimate.

    The sensitivity is estimated from the run itself as the slope of the first
    grid segment, ``s = (m(0) - m(ε₁)) / ε₁`` with ``ε₁`` the smallest positive
    magnitude of the grid, and the estimate is ``m(0) - ε·s``. ``m(0)`` is the
    clean baseline (``result.baseline[metric]``, or the magnitude-0 row of the
    table for metrics such as ``accuracy_drop`` that have no baseline entry).
    The measured value is the mean over repeats, interpolated linearly between
    grid magnitudes when ``magnitude`` is not on the grid; magnitudes beyond the
    grid are refused (nothing was measured there).

    Args:
        result: a :class:`perturbkit.SweepResult` (anything with ``summary()``
            returning columns label, perturbation, magnitude, metric, group,
            mean, and a ``baseline`` dict).
        perturbation: a perturbation label (as in ``result.summary()["label"]``)
            or its registry name when that is unambiguous.
        magnitude: ``ε ≥ 0`` in the perturbation's unit, within the run's grid.
        metric: the metric to compare, e.g. ``"accuracy"``.
    """
    import pandas as pd

    owner = "calc.from_run"
    table = None
    summary = getattr(result, "summary", None)
    if callable(summary) and hasattr(result, "baseline"):
        table = summary()
    needed = {"label", "perturbation", "magnitude", "metric", "mean"}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise ParameterError(
            f"The 'result' parameter of {owner} must be a SweepResult (with .summary() and "
            f".baseline). Got {type(result).__name__} instead."
        )
    if "group" in table.columns:
        table = table[table["group"] == ""]
    labels = sorted(set(table["label"].astype(str)))
    if not isinstance(perturbation, str):
        raise _fail(owner, "perturbation", "one of " + ", ".join(map(repr, labels)), perturbation)
    if perturbation in labels:
        label = perturbation
    else:
        matches = sorted(set(table.loc[table["perturbation"] == perturbation, "label"].astype(str)))
        if len(matches) != 1:
            what = "one of" if not matches else "unambiguous; use one of the labels"
            raise _fail(
                owner,
                "perturbation",
                what + " " + ", ".join(map(repr, matches or labels)),
                perturbation,
            )
        label = matches[0]
    rows = table[table["label"].astype(str) == label]
    metrics = sorted(set(rows["metric"].astype(str)))
    if not isinstance(metric, str) or metric not in metrics:
        raise _fail(owner, "metric", "one of " + ", ".join(map(repr, metrics)), metric)
    rows = rows[rows["metric"] == metric]
    curve = rows.groupby("magnitude", sort=True)["mean"].mean()
    mags = [float(m) for m in curve.index]
    vals = [float(v) for v in curve.to_numpy()]
    baseline_map = dict(getattr(result, "baseline", None) or {})
    if metric in baseline_map:
        baseline = float(baseline_map[metric])
    elif mags and mags[0] == 0.0:
        baseline = vals[0]
    else:
        raise _fail(
            owner,
            "metric",
            "a metric with a clean baseline (in result.baseline or at magnitude 0)",
            metric,
        )
    if not mags or mags[0] != 0.0:
        mags, vals = [0.0, *mags], [baseline, *vals]
    if len(mags) < 2:
        raise _fail(owner, "result", "a run whose grid has a positive magnitude", result)
    magnitude = _real(owner, "magnitude", magnitude, 0.0)
    if magnitude > mags[-1]:
        raise _fail(
            owner, "magnitude", f"a float in the run's grid range [0, {mags[-1]:g}]", magnitude
        )
    if not all(math.isfinite(v) for v in vals) or not math.isfinite(baseline):
        raise _fail(owner, "metric", "a metric with finite values in this run", metric)
    measured = float(np.interp(magnitude, mags, vals))
    eps1 = mags[1]
    sensitivity = (vals[0] - vals[1]) / eps1
    estimate = baseline - magnitude * sensitivity
    return RunComparison(
        perturbation=label,
        metric=metric,
        magnitude=magnitude,
        measured=measured,
        interpolated=magnitude not in mags,
        baseline=baseline,
        sensitivity=sensitivity,
        sensitivity_magnitude=eps1,
        estimate=estimate,
        difference=estimate - measured,
        grid_magnitudes=tuple(mags),
        grid_values=tuple(vals),
    )
