"""The shared Perturbation contract, runnable by plugin authors.

:func:`check_perturbation` runs every property the engine relies on against
one instance and one batch, and raises ``AssertionError`` naming the
perturbation and the property that broke. :func:`check_registry` runs it over
every registered perturbation of a modality::

    from perturbkit.testing import check_perturbation
    check_perturbation(MyPerturbation(), X)

Numeric batches (arrays, tensors, DataFrames) are compared by value and
bytes. Text batches (a list, tuple, 1-D array or pandas Series of ``str``,
as the perturbations of modality ``"text"`` take) are compared as Python
lists of strings, and their output must be the same kind of container with
one ``str`` per input string.

These checks only read ``p`` and ``X``: they never fit ``p``, never write
``X``, and never touch the global random state.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from perturbkit.exceptions import ParameterError, UnknownPerturbationError
from perturbkit.perturbations.base import Perturbation

__all__ = ["check_perturbation", "check_registry"]

_BAD_MAGNITUDES: tuple[Any, ...] = (-0.1, -1, math.nan, math.inf, -math.inf, "0.1", None, True)


# -- helpers ----------------------------------------------------------------------------
def _fail(p: Perturbation, what: str) -> AssertionError:
    return AssertionError(f"{p!r} ({p.id}): {what}")


def _values(obj: Any) -> np.ndarray:
    return np.asarray(obj)


def _is_series(X: Any) -> bool:
    return hasattr(X, "index") and hasattr(X, "to_numpy") and not hasattr(X, "columns")


def _is_text(X: Any) -> bool:
    """Whether ``X`` is a batch of strings: a list, tuple, 1-D array or Series of ``str``.

    An empty list or tuple counts (nothing in it is not a string); a single
    ``str`` does not (it is not a batch).
    """
    if isinstance(X, np.ndarray):
        if X.ndim != 1 or X.dtype.kind not in "UO":
            return False
        return X.dtype.kind == "U" or all(isinstance(s, str) for s in X.tolist())
    if _is_series(X):
        if getattr(X.dtype, "kind", None) not in ("O", "U"):  # object, str or pandas StringDtype
            return False
        return all(isinstance(s, str) for s in X.tolist())
    return isinstance(X, (list, tuple)) and all(isinstance(s, str) for s in X)


def _text_list(X: Any) -> list[Any]:
    # Not via np.asarray: a '<U' array drops trailing NULs, and a Series of str gives
    # new objects on every call.
    return X.tolist() if isinstance(X, np.ndarray) or _is_series(X) else list(X)


def _equal(a: Any, b: Any) -> bool:
    """Same shape and values (NaN equal to NaN); dtype not compared.

    Batches of strings compare as Python lists of their items.
    """
    if _is_text(a) or _is_text(b):
        return _text_list(a) == _text_list(b)
    a, b = _values(a), _values(b)
    if a.shape != b.shape:
        return False
    if np.issubdtype(a.dtype, np.inexact) or np.issubdtype(b.dtype, np.inexact):
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _leaves(params: Any) -> list[Any]:
    """Flatten a params structure (arrays in nested lists, tuples and dicts)."""
    if params is None or isinstance(params, (np.ndarray, np.generic, int, float, bool, str)):
        return [params]
    if isinstance(params, Mapping):
        return [("key", k) for k in sorted(params, key=str)] + [
            leaf for k in sorted(params, key=str) for leaf in _leaves(params[k])
        ]
    if isinstance(params, Sequence):
        return [("len", len(params))] + [leaf for item in params for leaf in _leaves(item)]
    return [params]


def _params_equal(a: Any, b: Any) -> bool:
    la, lb = _leaves(a), _leaves(b)
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb, strict=True):
        if x is None or y is None or isinstance(x, tuple) or isinstance(y, tuple):
            if x != y:
                return False
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not _equal(x, y):
                return False
        elif x != y and not (x != x and y != y):  # NaN scalars compare equal here
            return False
    return True


class _TextSnapshot:
    """A batch of strings by value: its items, and its dtype and index where it has them."""

    def __init__(self, X: Any) -> None:
        self.items = _text_list(X)
        self.dtype = getattr(X, "dtype", None)
        self.index = X.index.copy() if _is_series(X) else None

    def matches(self, X: Any) -> bool:
        if not _is_text(X) or _text_list(X) != self.items:
            return False
        if getattr(X, "dtype", None) != self.dtype:
            return False
        return self.index is None or bool(X.index.equals(self.index))


def _snapshot(X: Any) -> Any:
    if hasattr(X, "columns") and hasattr(X, "index"):
        return X.copy(deep=True)
    if _is_text(X):
        return _TextSnapshot(X)
    arr = np.asarray(X)
    return arr.copy(), arr.tobytes()


def _untouched(X: Any, snap: Any) -> bool:
    if isinstance(snap, _TextSnapshot):
        return snap.matches(X)
    if hasattr(X, "columns") and hasattr(X, "index"):
        return bool(X.equals(snap)) and list(X.columns) == list(snap.columns)
    arr = np.asarray(X)
    return arr.shape == snap[0].shape and arr.dtype == snap[0].dtype and arr.tobytes() == snap[1]


def _np_state_equal(a: Any, b: Any) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


def _expected_dtype(arr: np.ndarray) -> np.dtype:
    return arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)


def _source(p: Perturbation, arr: np.ndarray) -> Perturbation:
    """The instance whose statistics ``p(X, ...)`` uses: ``p`` or a fitted copy."""
    return p if p.fitted else p._with_stats(arr)


def _registered_class(p: Perturbation) -> type[Perturbation] | None:
    from perturbkit.perturbations.registry import get_class

    try:
        cls = get_class(p.name)
    except (UnknownPerturbationError, TypeError):
        return None
    return cls if cls is type(p) else None


# -- the contract -----------------------------------------------------------------------
def check_perturbation(
    p: Perturbation,
    X: Any,
    *,
    magnitudes: Iterable[float] = (0.1, 0.5),
    seed: int = 0,
) -> None:
    """Check that ``p`` keeps the Perturbation contract on the batch ``X``.

    Checked, at each magnitude in ``magnitudes`` (all > 0 and allowed for ``p``):

    - class attributes: ``name``, ``unit``, ``modality``, an int ``version`` >= 1,
      a docstring; ``type(p)(**p.get_params()) == p`` (``__init__`` only stores);
    - the output keeps the shape, the floating dtype (integer input becomes
      float64) and the container (a DataFrame stays a DataFrame); for text
      (``p.modality == "text"`` or a batch of ``str``), the output is the
      same container (list, tuple, 1-D array of the same kind, Series with
      the same index, dtype and name) holding one ``str`` per input string;
    - ``check(X)`` (what the engine runs on swept data) accepts ``X``;
    - magnitude 0 is the identity, through ``__call__`` and through ``apply``;
    - the same seed gives the same output; another seed draws other params
      (stochastic) or changes nothing (deterministic: params are ``None``);
    - ``apply(X, params, m)`` replays ``p(X, m, rng, return_params=True)``,
      and ``apply`` writes neither ``X`` nor ``params``;
    - a one-shot call ``p(X, m, rng)`` (``sample_apply``, which may fuse
      drawing and applying) gives the same bits as ``sample`` then ``apply``
      and leaves ``rng`` in the same state;
    - common random numbers: the params drawn at every magnitude are the same,
      and do not depend on X's floating dtype;
    - ``sample_block`` is a pure function of (root, repeat, block);
    - ``to_dict`` is JSON- and YAML-ready and ``from_dict`` rebuilds an equal
      instance with the same stream key (when ``p`` is registered);
    - negative, NaN, infinite, non-numeric and too-large magnitudes raise
      ``ParameterError``;
    - the caller's ``X`` and the global random states (``np.random``,
      ``random``) are unchanged afterwards.

    Raises:
        AssertionError: naming ``p`` and the property that does not hold.
    """
    mags = [float(m) for m in magnitudes]
    if not mags or any(not (m > 0) for m in mags):
        raise ValueError(f"check_perturbation needs magnitudes > 0. Got {mags} instead.")
    np_state = np.random.get_state()  # noqa: NPY002 - read only, to compare
    py_state = random.getstate()
    snap = _snapshot(X)

    p._validate_params()  # bad constructor arguments raise ParameterError here, as in __call__
    _check_class(p)
    try:
        p.check(X)
    except Exception as exc:
        raise _fail(p, f"check(X) refused a batch the rest of the checks take: {exc}") from exc
    arr, _ = p.prepare(X)
    src = _source(p, arr)
    _check_identity(p, src, X, arr, seed)
    first_params: Any = None
    for i, m in enumerate(mags):
        params = _check_magnitude_run(p, src, X, arr, m, seed)
        if i == 0:
            first_params = params
        elif not _params_equal(params, first_params):
            raise _fail(
                p,
                f"the params drawn at magnitude {m} differ from those at {mags[0]} with the "
                "same seed; sample() must not depend on the magnitude (common random numbers).",
            )
    _check_dtype_free_draws(p, src, arr, seed)
    _check_sample_block(p, src, arr, seed)
    _check_serialisation(p, X, mags[-1], seed)
    _check_bad_magnitudes(p, X)

    if not _untouched(X, snap):
        raise _fail(p, "the caller's X was modified in place.")
    if not _np_state_equal(np_state, np.random.get_state()):  # noqa: NPY002
        raise _fail(p, "the global numpy random state (np.random) was changed.")
    if py_state != random.getstate():
        raise _fail(p, "the global `random` module state was changed.")


def _check_class(p: Perturbation) -> None:
    cls = type(p)
    for attr in ("name", "unit", "modality"):
        value = getattr(p, attr, "")
        if not isinstance(value, str) or not value:
            raise _fail(p, f"class attribute '{attr}' must be a non-empty str; got {value!r}.")
    if not isinstance(cls.version, int) or isinstance(cls.version, bool) or cls.version < 1:
        raise _fail(p, f"class attribute 'version' must be an int >= 1; got {cls.version!r}.")
    if not inspect.getdoc(cls) or inspect.getdoc(cls) == inspect.getdoc(Perturbation):
        raise _fail(
            p, "the class needs its own docstring stating what one unit of magnitude means."
        )
    mx = cls.max_magnitude
    if mx is not None and not (isinstance(mx, (int, float)) and mx > 0 and math.isfinite(mx)):
        raise _fail(p, f"'max_magnitude' must be None or a finite float > 0; got {mx!r}.")
    clone = cls(**p.get_params())
    if clone != p or clone.key != p.key:
        raise _fail(
            p,
            f"type(p)(**p.get_params()) gives {clone!r}, which is not equal to p; "
            "__init__ must only store its arguments.",
        )


def _check_output(p: Perturbation, X: Any, out: Any, arr: np.ndarray, m: float) -> None:
    if p.modality == "text" or _is_text(X):
        _check_text_output(p, X, out, arr, m)
        return
    if hasattr(X, "columns") and hasattr(X, "index"):
        if type(out) is not type(X):
            raise _fail(p, f"a {type(X).__name__} in gave a {type(out).__name__} out at {m}.")
        if list(out.columns) != list(X.columns) or not out.index.equals(X.index):
            raise _fail(p, f"the output at magnitude {m} lost the DataFrame's columns or index.")
    out_arr = _values(out)
    if out_arr.shape != arr.shape:
        raise _fail(p, f"output shape {out_arr.shape} at magnitude {m}; input was {arr.shape}.")
    want = _expected_dtype(np.asarray(X))
    if out_arr.dtype != want:
        raise _fail(p, f"output dtype {out_arr.dtype} at magnitude {m}; expected {want}.")


def _check_text_output(p: Perturbation, X: Any, out: Any, arr: np.ndarray, m: float) -> None:
    """Text: the same container, one ``str`` per input string (lengths may change)."""
    if type(out) is not type(X):
        raise _fail(p, f"a {type(X).__name__} in gave a {type(out).__name__} out at {m}.")
    items = _text_list(out)
    if len(items) != len(arr):
        raise _fail(p, f"{len(items)} strings out at magnitude {m}; {len(arr)} in.")
    bad = next((i for i, s in enumerate(items) if not isinstance(s, str)), None)
    if bad is not None:
        raise _fail(
            p, f"the output at magnitude {m} holds a {type(items[bad]).__name__} at item {bad}."
        )
    if isinstance(X, np.ndarray) and (out.ndim != 1 or out.dtype.kind != X.dtype.kind):
        raise _fail(
            p, f"a 1-D {X.dtype} array in gave a {out.ndim}-D {out.dtype} array out at {m}."
        )
    if _is_series(X):
        if not out.index.equals(X.index):
            raise _fail(p, f"the output at magnitude {m} lost the Series' index.")
        if out.dtype != X.dtype or out.name != X.name:
            raise _fail(p, f"the output at magnitude {m} lost the Series' dtype or name.")


def _check_identity(p: Perturbation, src: Perturbation, X: Any, arr: np.ndarray, seed: int) -> None:
    out = p(X, 0.0, np.random.default_rng(seed))
    _check_output(p, X, out, arr, 0.0)
    if not _equal(out, arr):
        raise _fail(p, "magnitude 0 through __call__ is not the identity.")
    params = src.sample(arr, np.random.default_rng(seed)) if p.stochastic else None
    out = src.apply(arr, params, 0.0)
    if not _equal(out, arr) or _values(out).dtype != arr.dtype:
        raise _fail(p, "apply(X, params, 0) does not return X's values in X's dtype.")


def _check_magnitude_run(
    p: Perturbation, src: Perturbation, X: Any, arr: np.ndarray, m: float, seed: int
) -> Any:
    r_params, r_once = np.random.default_rng(seed), np.random.default_rng(seed)
    out, params = p(X, m, r_params, return_params=True)
    _check_output(p, X, out, arr, m)
    again = p(X, m, r_once)
    if not _equal(out, again):
        raise _fail(
            p,
            f"a one-shot call at magnitude {m} with seed {seed} differs from sample then "
            "apply with the same seed (return_params=True).",
        )
    if r_once.bit_generator.state != r_params.bit_generator.state:
        raise _fail(
            p,
            f"a one-shot call at magnitude {m} leaves the generator in another state than "
            "sample then apply: sample_apply must read rng exactly as sample does.",
        )
    if not _equal(p(X, m, seed), out):
        raise _fail(p, f"an int seed {seed} and default_rng({seed}) give different outputs.")

    other_out, other_params = p(X, m, np.random.default_rng(seed + 1), return_params=True)
    if p.stochastic:
        if params is None or _params_equal(params, other_params):
            raise _fail(
                p,
                f"seeds {seed} and {seed + 1} drew the same params at magnitude {m}; "
                "a stochastic perturbation must draw from the rng it is given.",
            )
    else:
        if params is not None:
            raise _fail(p, f"a deterministic perturbation returned params {params!r}; want None.")
        if not _equal(out, other_out):
            raise _fail(
                p, f"a deterministic perturbation gave other output for another seed at {m}."
            )

    kept_params = copy.deepcopy(params)
    kept_arr = arr.copy()
    replay = src.apply(arr, params, m)
    if not _equal(replay, out):
        raise _fail(p, f"apply(X, params, {m}) does not replay __call__ with the returned params.")
    if not _params_equal(params, kept_params):
        raise _fail(p, f"apply(X, params, {m}) modified params in place.")
    if arr.tobytes() != kept_arr.tobytes():  # object arrays (text): any item replaced
        raise _fail(p, f"apply(X, params, {m}) modified X in place.")
    return params


def _check_dtype_free_draws(p: Perturbation, src: Perturbation, arr: np.ndarray, seed: int) -> None:
    if not p.stochastic or not np.issubdtype(arr.dtype, np.floating):
        return
    base = src.sample(arr, np.random.default_rng(seed))
    for dt in (np.float32, np.float64):
        other = src.sample(arr.astype(dt), np.random.default_rng(seed))
        if not _params_equal(base, other):
            raise _fail(
                p,
                f"sample() drew other numbers for a {np.dtype(dt)} copy of X; draw in float64 "
                "whatever X's dtype and cast in apply.",
            )


def _check_sample_block(p: Perturbation, src: Perturbation, arr: np.ndarray, seed: int) -> None:
    a = src.sample_block(arr, root=seed, repeat=0, block=0)
    b = src.sample_block(arr, root=seed, repeat=0, block=0)
    if not _params_equal(a, b):
        raise _fail(p, "sample_block gave different draws for the same (root, repeat, block).")
    if p.stochastic:
        c = src.sample_block(arr, root=seed, repeat=1, block=0)
        if _params_equal(a, c):
            raise _fail(p, "sample_block gave the same draws for repeats 0 and 1.")
    elif not all(leaf is None or isinstance(leaf, tuple) for leaf in _leaves(a)):
        raise _fail(p, f"sample_block of a deterministic perturbation returned {a!r}.")


def _check_serialisation(p: Perturbation, X: Any, m: float, seed: int) -> None:
    d = p.to_dict()
    try:
        text = json.dumps(d)
    except TypeError as exc:
        raise _fail(p, f"to_dict() is not JSON-ready: {exc}.") from exc
    if json.loads(text) != d:
        raise _fail(p, "to_dict() does not survive a JSON round trip unchanged.")
    try:
        import yaml

        yaml.safe_dump(d)
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        pass
    except yaml.YAMLError as exc:
        raise _fail(p, f"to_dict() is not YAML-ready: {exc}.") from exc
    if p.name in ("compose", "combine") or _registered_class(p) is not None:
        from perturbkit.perturbations.registry import from_dict

        q = from_dict(json.loads(text))
        if type(q) is not type(p) or q != p:
            raise _fail(p, f"from_dict(to_dict()) gives {q!r}, not an equal instance.")
        if q.key != p.key or q.id != p.id:
            raise _fail(p, "from_dict(to_dict()) changed the stream key or the id.")
        if not p.fitted and not _equal(q(X, m, seed), p(X, m, seed)):
            raise _fail(p, f"from_dict(to_dict()) perturbs differently at magnitude {m}.")


def _check_bad_magnitudes(p: Perturbation, X: Any) -> None:
    bad = list(_BAD_MAGNITUDES)
    if p.max_magnitude is not None:
        bad.append(float(p.max_magnitude) + 0.5)
    for m in bad:
        try:
            p(X, m, 0)
        except ParameterError:
            continue
        except Exception as exc:
            raise _fail(
                p, f"magnitude {m!r} raised {type(exc).__name__}, not ParameterError: {exc}"
            ) from exc
        raise _fail(p, f"magnitude {m!r} was accepted; it must raise ParameterError.")


# -- over the registry ------------------------------------------------------------------
_DEFAULT_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "ACME shipped 2,400 units to New York on 2024-03-01 at $3.50 each!",
    "Is it raining? Take an umbrella, just in case.",
    "Call me at 555-0123 (after 6 pm); thanks.",
    "She said: 'the model's accuracy is 97.5%' - impressive.",
)


def _default_batch(modality: str | None, seed: int) -> Any:
    """A small synthetic batch for ``modality``, drawn from its own generator seeded ``seed``."""
    gen = np.random.default_rng(seed)
    if modality == "tabular":
        return gen.normal(size=(32, 4)) * np.array([1.0, 10.0, 0.1, 3.0]) + np.array([0, 5, -1, 2])
    if modality == "text":
        return list(_DEFAULT_SENTENCES)
    if modality == "audio":  # 4 tones at 16 kHz, 128 ms each, peaks below 1
        t = np.arange(2048) / 16000
        freq = gen.uniform(100.0, 2000.0, (4, 1))
        phase = gen.uniform(0.0, 2 * np.pi, (4, 1))
        amp = gen.uniform(0.2, 0.6, (4, 1))
        tone = np.sin(2 * np.pi * freq * t + phase) + 0.5 * np.sin(4 * np.pi * freq * t + phase)
        return (amp * tone).astype(np.float32)  # |amp * tone| <= 0.9
    if modality == "image":  # NCHW, RGB
        return gen.random((4, 3, 16, 16), dtype=np.float32)
    raise ValueError(
        f"check_registry has no default batch for modality {modality!r} (it has one for "
        "'tabular', 'image', 'text' and 'audio'); pass X."
    )


def check_registry(
    X: Any = None,
    *,
    modality: str | None = "tabular",
    magnitudes: Iterable[float] = (0.1, 0.5),
    seed: int = 0,
) -> list[str]:
    """Run :func:`check_perturbation` on every registered perturbation of ``modality``.

    Each is built with its default parameters. Without ``X``, each is checked
    on a small synthetic batch of its modality, seeded with ``seed``:

    - ``"tabular"``: a ``(32, 4)`` float64 table of columns on different scales;
    - ``"image"``: a ``(4, 3, 16, 16)`` float32 NCHW batch in ``[0, 1]``;
    - ``"text"``: a list of five short sentences with numbers and punctuation;
    - ``"audio"``: a ``(4, 2048)`` float32 batch of tones (sines) in ``[-1, 1]``.

    For other modalities give a batch of your own. ``modality=None`` checks
    every registered perturbation (without ``X``, each on its modality's
    batch). Returns the names checked.

    Raises:
        AssertionError: listing every perturbation that failed, one per line.
        ValueError: ``X`` is None and a modality has no default batch.
    """
    from perturbkit.perturbations import registry

    names = registry.list(modality)
    batches: dict[str, Any] = {}
    if X is None:
        modalities = [modality] if modality is not None else []
        modalities += [registry.get_class(name).modality for name in names]
        for mod in dict.fromkeys(modalities):
            batches[mod] = _default_batch(mod, seed)
    failures = []
    for name in names:
        p = registry.get(name)
        batch = batches[p.modality] if X is None else X
        try:
            check_perturbation(p, batch, magnitudes=magnitudes, seed=seed)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    if failures:
        raise AssertionError(
            f"{len(failures)} of {len(names)} perturbations break the contract:\n"
            + "\n".join(failures)
        )
    return names
