"""Text perturbations of batches of strings: typos, OCR errors, noise, word edits, synonyms.

A batch is a list, tuple, 1-D numpy array or pandas Series of ``str``; the
output is the same kind of container with one string per input string.

**Magnitude** is the fraction of eligible units touched, at most 1. A unit is
a character for the character-level perturbations and a word for the
word-level ones, and *eligible* means the perturbation can act on it and it is
not protected (each class says which units are eligible;
:meth:`TextPerturbation.count_eligible` counts them). ``sample`` draws one
uniform ``u`` per unit (and one ``v`` per unit to choose the replacement);
a unit is touched iff ``u < magnitude``, so what is touched at 0.1 is also
touched at 0.2, with the same replacement (common random numbers), and the
expected fraction of eligible units touched is the magnitude. (Swaps touch
two units per edit: see :class:`CharSwap` and :class:`WordSwap`.)

**Protected tokens.** ``protect_numbers=True`` (the default) leaves every
whitespace-separated token that contains a digit untouched ("3.5", "$20",
"A4", "2024-01-02"); ``protect=["New York", "ACME"]`` leaves every exact,
case-sensitive occurrence of those strings untouched. Word-level
perturbations never drop, move, duplicate or replace a word that overlaps a
protected span.

**How it runs.** The batch is encoded once into one flat array of Unicode
code points. Every edit is a vectorised numpy operation on that array: a
table look-up of character classes, the positions where ``u < magnitude``,
sparse substitutions, insertions and deletions at those positions, or a
gather of word segments. The strings are decoded once at the end. Only the
synonym look-up touches Python objects per word (a dictionary look-up of the
candidate words). Character classes (letter, digit, space, punctuation, case)
cover the Basic Multilingual Plane; code points above U+FFFF (emoji) are never
edited. The draws are per unit of the batch being perturbed, as with every
perturbation. When a step of a :class:`~perturbkit.Combine` or
:class:`~perturbkit.Compose` runs on text that an earlier step lengthened,
the extra units reuse the row's draws cyclically.

Catalogue (registry name: what one touched unit becomes):

- ``keyboard_typos``: a letter or digit becomes a neighbouring QWERTY key;
- ``char_swap``: two adjacent letters or digits trade places;
- ``char_insert``: a neighbouring QWERTY key is typed after a letter or digit;
- ``char_delete``: a letter or digit is deleted;
- ``ocr_errors``: OCR confusions (0/O, l/1/I, S/5, B/8, rn/m, cl/d, vv/w …);
- ``case_changes``: a letter's case flips;
- ``punctuation_noise``: a word loses its punctuation, or gains a mark;
- ``whitespace_noise``: a space is deleted or doubled, or a word is split;
- ``word_drop``, ``word_duplicate``, ``word_swap``: word-level edits;
- ``synonym_substitution``: a word becomes a synonym from an offline
  thesaurus (Debian's ``mythes-en-us`` or ``wordnet-base``).
"""

from __future__ import annotations

import abc
import functools
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from perturbkit._validation import OneOf
from perturbkit.exceptions import DataError, MissingExtraError, ParameterError
from perturbkit.perturbations.base import Perturbation
from perturbkit.perturbations.registry import register

__all__ = [
    "CaseChanges",
    "CharDelete",
    "CharInsert",
    "CharSwap",
    "KeyboardTypos",
    "OcrErrors",
    "PunctuationNoise",
    "SynonymSubstitution",
    "TextPerturbation",
    "WhitespaceNoise",
    "WordDrop",
    "WordDuplicate",
    "WordSwap",
    "load_lexicon",
]

_BMP = 0x10000
_SPACE_CODE = 32
_EMPTY = np.zeros(0, np.int64)

# Character classes, one bit each in the flags table.
ALPHA, DIGIT, SPACE, PUNCT, KEY, OCR, CASE = 1, 2, 4, 8, 16, 32, 64
ALNUM = ALPHA | DIGIT

# -- character tables ---------------------------------------------------------------------
_QWERTY = ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./")

# OCR confusions: single characters, one-to-two expansions, two-to-one contractions.
_OCR_SUBSTITUTE = {
    "0": ("O", "o"),
    "O": ("0", "Q"),
    "o": ("0",),
    "Q": ("O",),
    "D": ("O",),
    "1": ("l", "I"),
    "l": ("1", "I"),
    "I": ("l", "1"),
    "i": ("l",),
    "j": ("i",),
    "5": ("S",),
    "S": ("5",),
    "8": ("B",),
    "B": ("8",),
    "2": ("Z",),
    "Z": ("2",),
    "6": ("b",),
    "b": ("6", "h"),
    "9": ("g",),
    "g": ("9", "q"),
    "q": ("g",),
    "e": ("c",),
    "c": ("e",),
    "a": ("o",),
    "u": ("v",),
    "v": ("u",),
    "h": ("b",),
    "E": ("F",),
    "F": ("E",),
    "G": ("6",),
    "t": ("f",),
    "f": ("t",),
}
_OCR_EXPAND = {"m": ("rn",), "w": ("vv",), "d": ("cl",), "W": ("VV",)}
_OCR_CONTRACT = {"rn": "m", "vv": "w", "cl": "d", "VV": "W"}


@dataclass(frozen=True)
class _Tables:
    flags: np.ndarray  # (65536,) uint8 class bits
    swapcase: np.ndarray  # (65536,) uint32, 0 where the swap is not one BMP code point
    keys: np.ndarray  # (128, 8) uint32 QWERTY neighbours
    n_keys: np.ndarray  # (128,) int64
    ocr: np.ndarray  # (128, 3, 2) uint32 confusions (second code 0: one character)
    n_ocr: np.ndarray  # (128,) int64
    contract: np.ndarray  # (128, 128) uint32 merged pair, 0 for none


@functools.cache
def _tables() -> _Tables:
    chars = [chr(c) for c in range(_BMP)]
    flags = np.zeros(_BMP, np.uint8)
    for bit, test in (
        (ALPHA, str.isalpha),
        (DIGIT, str.isdigit),
        (SPACE, str.isspace),
        (PUNCT, lambda ch: unicodedata.category(ch).startswith("P")),
    ):
        flags |= np.fromiter((test(ch) for ch in chars), bool, _BMP).astype(np.uint8) * bit

    def swapped(ch: str) -> int:
        s = ch.swapcase()
        return ord(s) if len(s) == 1 and s != ch and ord(s) < _BMP else 0

    swapcase = np.fromiter((swapped(ch) for ch in chars), np.uint32, _BMP)
    flags[swapcase > 0] |= CASE

    pos = {ch: (r, c) for r, row in enumerate(_QWERTY) for c, ch in enumerate(row)}
    keys = np.zeros((128, 8), np.uint32)
    n_keys = np.zeros(128, np.int64)
    for ch, (r, c) in pos.items():
        if not ch.isalnum():
            continue
        cells = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
        near = [_QWERTY[rr][cc] for rr, cc in cells if 0 <= rr < 4 and 0 <= cc < len(_QWERTY[rr])]
        for key, options in ((ch, near), (ch.upper(), [o.upper() for o in near])):
            keys[ord(key), : len(options)] = [ord(o) for o in options]
            n_keys[ord(key)] = len(options)
    flags[:128][n_keys > 0] |= KEY

    ocr = np.zeros((128, 3, 2), np.uint32)
    n_ocr = np.zeros(128, np.int64)
    for ch in set(_OCR_SUBSTITUTE) | set(_OCR_EXPAND):
        options = _OCR_SUBSTITUTE.get(ch, ()) + _OCR_EXPAND.get(ch, ())
        for k, rep in enumerate(options):
            ocr[ord(ch), k, : len(rep)] = [ord(r) for r in rep]
        n_ocr[ord(ch)] = len(options)
    contract = np.zeros((128, 128), np.uint32)
    for pair, target in _OCR_CONTRACT.items():
        contract[ord(pair[0]), ord(pair[1])] = ord(target)
    flags[:128][(n_ocr > 0) | (contract > 0).any(axis=1)] |= OCR
    return _Tables(flags, swapcase, keys, n_keys, ocr, n_ocr, contract)


def _encode_str(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-32-le", "surrogatepass"), "<u4")


# -- the flat batch ------------------------------------------------------------------------
class _Flat:
    """A batch as one flat array of code points, with each string's length.

    Derived arrays (class flags, positions of spaces and digits, the row of
    each code point) are computed on first use and kept.
    """

    def __init__(self, codes: np.ndarray, lengths: np.ndarray) -> None:
        self.codes = codes
        self.lengths = lengths
        self.n = lengths.shape[0]
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        self._cache: dict[str, Any] = {}

    @classmethod
    def encode(cls, strings: list[str]) -> _Flat:
        lengths = np.fromiter(map(len, strings), np.int64, len(strings))
        return cls(_encode_str("".join(strings)), lengths)

    def decode(self) -> list[str]:
        big = np.ascontiguousarray(self.codes, "<u4").tobytes().decode("utf-32-le", "surrogatepass")
        return [big[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist())]

    @property
    def size(self) -> int:
        return int(self.codes.shape[0])

    def _cached(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def flags(self) -> np.ndarray:
        """Class bits of every code point (0 above the BMP: table[0xFFFF] is 0)."""
        return self._cached("flags", lambda: np.take(_tables().flags, self.codes, mode="clip"))

    def flags_at(self, idx: np.ndarray) -> np.ndarray:
        if "flags" in self._cache:
            return self._cache["flags"][idx]
        return np.take(_tables().flags, self.codes[idx], mode="clip")

    @property
    def row(self) -> np.ndarray:
        """The row (string index) of each code point."""
        return self._cached("row", lambda: np.repeat(np.arange(self.n), self.lengths))

    def row_of(self, idx: np.ndarray) -> np.ndarray:
        if "row" in self._cache:
            return self._cache["row"][idx]
        return np.searchsorted(self.ends, idx, side="right")

    def positions(self, bits: int) -> np.ndarray:
        """Sorted positions of the code points with any of ``bits``."""
        return self._cached(f"pos{bits}", lambda: np.flatnonzero(self.flags & bits))

    def same_row_next(self, idx: np.ndarray) -> np.ndarray:
        """Whether ``idx + 1`` exists and is in the same string as ``idx``."""
        return idx + 1 < self.ends[self.row_of(idx)]

    @property
    def row_start(self) -> np.ndarray:
        def make() -> np.ndarray:
            rs = np.zeros(self.size, bool)
            rs[self.starts[self.lengths > 0]] = True
            return rs

        return self._cached("row_start", make)

    # -- sparse edits ------------------------------------------------------------------
    def edit(
        self,
        sub: tuple[np.ndarray, np.ndarray] | None = None,
        insert_after: tuple[np.ndarray, np.ndarray] | None = None,
        delete: np.ndarray | None = None,
    ) -> _Flat:
        """Substitute, insert after and delete at sorted, distinct original positions."""
        codes = self.codes
        lengths = self.lengths
        if sub is not None and sub[0].size:
            codes = codes.copy()
            codes[sub[0]] = sub[1]
        ins = insert_after[0] if insert_after is not None else _EMPTY
        dele = delete if delete is not None else _EMPTY
        if ins.size:
            codes = np.insert(codes, ins + 1, insert_after[1])  # type: ignore[index]
            lengths = lengths + np.bincount(self.row_of(ins), minlength=self.n)
        if dele.size:
            shifted = dele + np.searchsorted(ins, dele, side="left")
            codes = np.delete(codes, shifted)
            lengths = lengths - np.bincount(self.row_of(dele), minlength=self.n)
        if codes is self.codes:
            return self
        return _Flat(codes.astype(np.uint32, copy=False), lengths)


def _number_mask(flat: _Flat) -> np.ndarray:
    """True at every code point of a whitespace-separated token that contains a digit."""
    bits = flat.flags
    space = (bits & SPACE) > 0
    start = ~space & flat.row_start
    start[1:] |= ~space[1:] & space[:-1]
    token = np.cumsum(start) - 1
    word = ~space
    has_digit = np.bincount(token[word & ((bits & DIGIT) > 0)], minlength=int(start.sum())) > 0
    out = np.zeros(flat.size, bool)
    out[word] = has_digit[token[word]]
    return out


def _in_number(flat: _Flat, idx: np.ndarray) -> np.ndarray:
    """Whether the code points at ``idx`` lie in a token that contains a digit (sparse)."""
    digits, spaces = flat.positions(DIGIT), flat.positions(SPACE)
    row = flat.row_of(idx)
    j = np.searchsorted(spaces, idx)
    bounds = np.concatenate([[-1], spaces, [flat.size]])
    prev_space, next_space = bounds[j], bounds[j + 1]
    lo = np.maximum(prev_space + 1, flat.starts[row])
    hi = np.minimum(next_space, flat.ends[row])
    first_digit = np.append(digits, flat.size)[np.searchsorted(digits, lo)]
    return (first_digit < hi) & (next_space != idx)  # a space is in no token


@dataclass
class _Runs:
    """Maximal runs of equal ``flag`` within each string (words and the gaps between them)."""

    start: np.ndarray  # first code point of each run
    length: np.ndarray
    row: np.ndarray
    flag: np.ndarray  # True for a word run
    run_of: np.ndarray  # the run index of each code point

    @classmethod
    def of(cls, flat: _Flat, flag: np.ndarray) -> _Runs:
        n = flat.size
        change = flat.row_start.copy()
        if n:
            change[0] = True
            change[1:] |= flag[1:] != flag[:-1]
        start = np.flatnonzero(change)
        length = np.diff(np.append(start, n))
        return cls(start, length, flat.row_of(start), flag[start], np.cumsum(change) - 1)

    def words(self) -> np.ndarray:
        return np.flatnonzero(self.flag)

    def any_in_run(self, mask: np.ndarray) -> np.ndarray:
        """Per run: whether any of its code points is in ``mask``."""
        return np.bincount(self.run_of[mask], minlength=self.start.shape[0]) > 0


def _gather(source: np.ndarray, seg_start: np.ndarray, seg_len: np.ndarray) -> np.ndarray:
    """Concatenate ``source[s : s + l]`` for the segments, in order."""
    total = int(seg_len.sum())
    if total == 0:
        return np.zeros(0, np.uint32)
    offsets = np.repeat(seg_start - (np.cumsum(seg_len) - seg_len), seg_len)
    return source[offsets + np.arange(total)]


def _assemble(
    flat: _Flat,
    pool: np.ndarray,
    seg_start: np.ndarray,
    seg_len: np.ndarray,
    seg_row: np.ndarray,
) -> _Flat:
    """A new batch from segments of ``codes + pool`` (segment starts index the joint array)."""
    source = np.concatenate([flat.codes, pool]).astype(np.uint32)
    codes = _gather(source, seg_start, seg_len)
    lengths = np.bincount(seg_row, weights=seg_len, minlength=flat.n).astype(np.int64)
    return _Flat(codes, lengths)


def _thin_sorted(sites: np.ndarray) -> np.ndarray:
    """Of sorted sites, keep the first, third … of each run of consecutive integers.

    Edits that span two units (a swap, an OCR contraction) may not overlap;
    this resolves a run of overlapping starts greedily, left to right.
    """
    if sites.size < 2:
        return sites
    new_run = np.ones(sites.shape[0], bool)
    new_run[1:] = sites[1:] != sites[:-1] + 1
    k = np.arange(sites.shape[0])
    run_start = np.maximum.accumulate(np.where(new_run, k, 0))
    return sites[(k - run_start) % 2 == 0]


def _align(draw: np.ndarray, drawn: np.ndarray, counts: np.ndarray, fill: Any) -> np.ndarray:
    """Per-unit draws for ``counts`` units per row, from draws made for ``drawn`` units per row.

    Equal counts (the usual case) return ``draw`` as is. Otherwise row i's
    unit j takes the row's draw ``j mod drawn[i]`` (``fill`` when it has none).
    """
    if drawn.shape != counts.shape:
        raise ParameterError(
            f"These params were drawn for a batch of {drawn.shape[0]} strings; "
            f"the batch has {counts.shape[0]}. Draw them with sample() on this batch."
        )
    if np.array_equal(drawn, counts):
        return draw
    total = int(counts.sum())
    row = np.repeat(np.arange(counts.shape[0]), counts)
    j = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    d = drawn[row]
    src = np.repeat(np.cumsum(drawn) - drawn, counts) + j % np.maximum(d, 1)
    out = np.full(total, fill, dtype=draw.dtype)
    has = d > 0
    out[has] = draw[src[has]]
    return out


def _choose(v: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Index ``floor(v · count / 2¹⁶)`` in ``[0, count)`` from 16-bit uniform integers ``v``."""
    return (v.astype(np.int64) * count) >> 16


# -- parameter constraints ---------------------------------------------------------------
@dataclass(frozen=True)
class _Strings:
    """A list of non-empty strings (not a bare string)."""

    def ok(self, v: Any) -> bool:
        if isinstance(v, (str, bytes)) or not isinstance(v, (Sequence, np.ndarray)):
            return False
        return all(isinstance(s, str) and len(s) > 0 for s in v)

    def __str__(self) -> str:
        return "a list of non-empty strings (e.g. ['New York'])"


@dataclass(frozen=True)
class _Marks:
    def ok(self, v: Any) -> bool:
        return isinstance(v, str) and len(v) > 0

    def __str__(self) -> str:
        return "a non-empty string of marks"


@dataclass(frozen=True)
class _Path:
    def ok(self, v: Any) -> bool:
        return v is None or isinstance(v, (str, os.PathLike))

    def __str__(self) -> str:
        return "None or the path of a MyThes .dat file or a WordNet dict folder"


_BOOL = OneOf((True, False))


# -- the base class ------------------------------------------------------------------------
class TextPerturbation(Perturbation):
    """Shared machinery: batches of strings in and out, protection, per-unit draws.

    Subclasses set ``_level`` (``"char"``: units are characters; ``"token"``:
    whitespace-separated words; ``"letters"``: runs of letters), ``_n_draws``
    (1: ``u``; 2: ``u`` and ``v``), and implement :meth:`_eligible` and
    :meth:`_edit`.
    """

    modality = "text"
    max_magnitude = 1.0
    rowwise = True  # params are flat per-unit arrays plus per-row counts: they concatenate
    _level: ClassVar[str] = "char"
    _n_draws: ClassVar[int] = 2
    _constraints: ClassVar[dict[str, Any]] = {"protect": _Strings(), "protect_numbers": _BOOL}

    protect: Sequence[str]
    protect_numbers: bool

    def __init__(self, *, protect: Sequence[str] = (), protect_numbers: bool = True) -> None:
        self.protect = protect
        self.protect_numbers = protect_numbers

    # -- batch in / out ---------------------------------------------------------------
    def prepare(self, X: Any) -> tuple[np.ndarray, Any]:
        """A 1-D object array of ``str`` and a token to give the caller's container back."""
        owner = type(self).__name__
        token: Any
        if isinstance(X, (str, bytes)):
            raise DataError(
                f"{owner} needs a batch of strings (a list or 1-D array of str). Got a single "
                f"{type(X).__name__} instead; wrap it in a list: [text]."
            )
        if hasattr(X, "index") and hasattr(X, "to_numpy") and not hasattr(X, "columns"):
            token = ("series", X.index, X.name, X.dtype)
            items = X.tolist()
        elif isinstance(X, np.ndarray):
            if X.ndim != 1:
                raise DataError(
                    f"{owner} needs a 1-D batch of strings. Got an array of shape {X.shape} "
                    "instead."
                )
            token = ("array", X.dtype)
            items = X.tolist()
        elif isinstance(X, (list, tuple)):
            token = (type(X).__name__, None)
            items = list(X)
        else:
            raise DataError(
                f"{owner} needs a batch of strings (a list, tuple, 1-D array or Series of str). "
                f"Got {type(X).__name__} instead."
            )
        kinds = set(map(type, items))
        if not kinds <= {str, np.str_}:
            i = next(k for k, s in enumerate(items) if not isinstance(s, str))
            raise DataError(
                f"{owner} needs a batch of strings; item {i} is a {type(items[i]).__name__} "
                f"({items[i]!r}). Convert it with str() or drop it."
            )
        arr = np.empty(len(items), dtype=object)
        arr[:] = [str(s) for s in items] if np.str_ in kinds else items
        return arr, token

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        kind, info = token[0], token[1]
        items = X_new.tolist()
        if kind == "list":
            return items
        if kind == "tuple":
            return tuple(items)
        if kind == "series":
            import pandas as pd

            return pd.Series(items, index=info, name=token[2], dtype=token[3])
        if info == np.dtype(object):
            return X_new.copy()
        return np.asarray(items, dtype=str) if items else np.asarray([], dtype=info)

    # -- protection -------------------------------------------------------------------------
    def _entity_mask(self, flat: _Flat) -> np.ndarray | None:
        """True inside every occurrence of a ``protect`` string (None when there are none)."""
        if not self.protect:
            return None

        def make() -> np.ndarray:
            n, codes = flat.size, flat.codes
            cover = np.zeros(n + 1, np.int64)
            for entity in self.protect:
                e = _encode_str(entity)
                k = e.shape[0]
                if k > n:
                    continue
                cand = np.flatnonzero(codes[: n - k + 1] == e[0])
                for i in range(1, k):
                    cand = cand[codes[cand + i] == e[i]]
                cand = cand[cand + k <= flat.ends[flat.row_of(cand)]]
                cover += np.bincount(cand, minlength=n + 1) - np.bincount(cand + k, minlength=n + 1)
            return np.cumsum(cover)[:n] > 0

        return flat._cached(f"entities{id(self)}", make)  # type: ignore[no-any-return]

    def _free_at(self, flat: _Flat, idx: np.ndarray) -> np.ndarray:
        """Whether the code points at sorted positions ``idx`` may be edited."""
        free = np.ones(idx.shape[0], bool)
        if self.protect_numbers and idx.size and flat.positions(DIGIT).size:
            if 8 * idx.size > flat.size:  # dense: one pass over the whole batch
                free &= ~flat._cached("numbers", lambda: _number_mask(flat))[idx]
            else:  # sparse: look up each position's token among the spaces
                free &= ~_in_number(flat, idx)
        ent = self._entity_mask(flat)
        if ent is not None:
            free &= ~ent[idx]
        return free

    def _protected(self, flat: _Flat) -> np.ndarray:
        """True for every code point that no edit may touch."""
        return ~self._free_at(flat, np.arange(flat.size))

    # -- draws ------------------------------------------------------------------------------
    def _runs(self, flat: _Flat) -> _Runs:
        bits = flat.flags
        flag = (bits & SPACE) == 0 if self._level == "token" else (bits & ALPHA) > 0
        return _Runs.of(flat, flag)

    def _counts(self, flat: _Flat) -> tuple[np.ndarray, _Runs | None]:
        """Units per string for this class's level, and the runs (word levels)."""
        if self._level == "char":
            return flat.lengths, None
        runs = self._runs(flat)
        return np.bincount(runs.row[runs.flag], minlength=flat.n).astype(np.int64), runs

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """Per unit: a uniform ``u`` in [0, 1) (and a 16-bit ``v``), plus units per string.

        The units are the characters (as many as each string's length) or the
        words of each string; nothing depends on the magnitude.
        """
        strings = X.tolist()
        if self._level == "char":
            counts = np.fromiter(map(len, strings), np.int64, len(strings))
        else:
            counts, _ = self._counts(_Flat.encode(strings))
        m = int(counts.sum())
        u = rng.random(m)
        if self._n_draws == 1:
            return u, counts
        return u, rng.integers(0, 1 << 16, m, dtype=np.uint16), counts

    def apply(self, X: np.ndarray, params: tuple[np.ndarray, ...], magnitude: float) -> np.ndarray:
        if magnitude == 0 or X.shape[0] == 0:
            return X.copy()
        flat = _Flat.encode(X.tolist())
        counts, runs = self._counts(flat)
        drawn = params[-1]
        u = _align(params[0], drawn, counts, np.inf)
        v = _align(params[1], drawn, counts, 0) if self._n_draws == 2 else None
        out = self._edit(flat, runs, u, v, float(magnitude)).decode()
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        return arr

    def count_eligible(self, X: Any) -> np.ndarray:
        """Per string, the number of units this perturbation may touch (see the class doc).

        At magnitude m the expected number of touched units is ``m`` times this.
        """
        self._validate_params()
        arr, _ = self.prepare(X)
        flat = _Flat.encode(arr.tolist())
        _, runs = self._counts(flat)
        elig = self._eligible(flat, runs)
        row = flat.row if runs is None else runs.row[runs.flag]
        return np.bincount(row[elig], minlength=flat.n)

    # -- for subclasses -------------------------------------------------------------------
    @abc.abstractmethod
    def _eligible(self, flat: _Flat, runs: _Runs | None) -> np.ndarray:
        """Per unit (character, or word in order): whether an edit may touch it."""

    @abc.abstractmethod
    def _edit(
        self,
        flat: _Flat,
        runs: _Runs | None,
        u: np.ndarray,
        v: np.ndarray | None,
        magnitude: float,
    ) -> _Flat:
        """The edited strings: units with ``u < magnitude`` (and eligible) are edited."""

    def _free_words(self, flat: _Flat, runs: _Runs) -> np.ndarray:
        """Per word run (in order): not overlapping a protected code point."""
        return ~runs.any_in_run(self._protected(flat))[runs.words()]


# -- character level ----------------------------------------------------------------------
_CHAR_UNIT = "fraction of eligible characters edited (at most 1)"


class _CharPerturbation(TextPerturbation):
    """Edits at the characters where ``u < magnitude`` and the character is eligible."""

    _bits: ClassVar[int] = ALNUM

    def _eligible(self, flat: _Flat, runs: _Runs | None) -> np.ndarray:
        return self._eligible_at(flat, np.arange(flat.size))

    def _eligible_at(self, flat: _Flat, idx: np.ndarray) -> np.ndarray:
        return ((flat.flags_at(idx) & self._bits) > 0) & self._free_at(flat, idx)

    def _chosen(self, flat: _Flat, u: np.ndarray, magnitude: float) -> np.ndarray:
        cand = np.flatnonzero(u < magnitude)
        return cand[self._eligible_at(flat, cand)]


@register
class KeyboardTypos(_CharPerturbation):
    """Keyboard typos: a letter or digit becomes a neighbouring key on a QWERTY keyboard.

    Magnitude is the fraction of eligible characters replaced (at most 1).
    Eligible: ASCII letters and digits that are not protected (digits are
    protected by default, as part of numbers). The neighbour (including
    diagonal neighbours and punctuation keys, e.g. ``l`` → ``k``, ``o``, ``p``,
    ``;``…) is chosen uniformly; an upper-case letter stays upper case.
    """

    name = "keyboard_typos"
    version = 1
    unit = _CHAR_UNIT
    _bits = KEY

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        t = _tables()
        idx = self._chosen(flat, u, magnitude)
        code = flat.codes[idx]
        new = t.keys[code, _choose(v[idx], t.n_keys[code])]
        return flat.edit(sub=(idx, new))


@register
class CharSwap(_CharPerturbation):
    """Adjacent characters trade places: "form" → "from".

    Magnitude is about the fraction of eligible characters moved (at most
    1): a swap starts at an eligible character whose right neighbour is also
    eligible with probability magnitude / 2, and each swap moves two.
    Eligible: letters and digits that are not protected. Where consecutive
    characters both start a swap, the first, third … of the run swap
    (greedy, left to right), so at large magnitudes fewer move.
    """

    name = "char_swap"
    version = 1
    unit = "fraction of eligible characters moved by a swap with a neighbour (at most 1)"
    _n_draws = 1

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        idx = self._chosen(flat, u, magnitude / 2)
        idx = idx[flat.same_row_next(idx)]
        idx = _thin_sorted(idx[self._eligible_at(flat, idx + 1)])
        code = flat.codes
        return flat.edit(
            sub=(np.concatenate([idx, idx + 1]), np.concatenate([code[idx + 1], code[idx]]))
        )


@register
class CharInsert(_CharPerturbation):
    """Fat-finger insertions: a neighbouring QWERTY key is typed right after a character.

    Magnitude is the fraction of eligible characters followed by an inserted
    one (at most 1), so the text grows by about magnitude × eligible
    characters. Eligible: ASCII letters and digits that are not protected.
    The inserted key is a uniformly chosen QWERTY neighbour, in the case of
    the character it follows.
    """

    name = "char_insert"
    version = 1
    unit = "fraction of eligible characters followed by an inserted key (at most 1)"
    _bits = KEY

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        t = _tables()
        idx = self._chosen(flat, u, magnitude)
        code = flat.codes[idx]
        return flat.edit(insert_after=(idx, t.keys[code, _choose(v[idx], t.n_keys[code])]))


@register
class CharDelete(_CharPerturbation):
    """Dropped keystrokes: a letter or digit is deleted.

    Magnitude is the fraction of eligible characters deleted (at most 1).
    Eligible: letters and digits (any script) that are not protected; spaces
    and punctuation stay.
    """

    name = "char_delete"
    version = 1
    unit = "fraction of eligible characters deleted (at most 1)"
    _n_draws = 1

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        return flat.edit(delete=self._chosen(flat, u, magnitude))


@register
class OcrErrors(_CharPerturbation):
    """OCR confusions: 0/O, l/1/I, S/5, B/8, Z/2, g/9, e/c, rn → m, m → rn, cl ↔ d, vv ↔ w.

    Magnitude is the fraction of eligible characters misread (at most 1).
    Eligible: characters with a confusion (``_OCR_SUBSTITUTE`` and
    ``_OCR_EXPAND`` in the source) and the first character of a confusable
    pair ("rn", "cl", "vv"), when not protected. A chosen pair start merges the
    pair into one character (when the second is not protected); a chosen
    single character becomes one of its confusions, chosen uniformly. Digits
    in numbers are protected by default: pass ``protect_numbers=False`` to
    misread them too.
    """

    name = "ocr_errors"
    version = 1
    unit = _CHAR_UNIT
    _bits = OCR

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        t = _tables()
        idx = self._chosen(flat, u, magnitude)
        codes = flat.codes
        code = codes[idx]
        has_next = flat.same_row_next(idx)
        nxt = np.where(has_next, codes[np.minimum(idx + 1, flat.size - 1)], 0)
        merged = np.where(nxt < 128, t.contract[code, np.minimum(nxt, 127)], 0)
        pairable = merged > 0
        pairable[pairable] &= self._free_at(flat, idx[pairable] + 1)
        pairs = _thin_sorted(idx[pairable])
        consumed = pairs + 1
        single = idx[(t.n_ocr[code] > 0) & ~np.isin(idx, pairs) & ~np.isin(idx, consumed)]
        sc = codes[single]
        rep = t.ocr[sc, _choose(v[single], t.n_ocr[sc])]
        expand = rep[:, 1] > 0
        pair_code = codes[pairs]
        sub_idx = np.concatenate([single, pairs])
        sub_val = np.concatenate([rep[:, 0], t.contract[pair_code, codes[consumed]]])
        order = np.argsort(sub_idx, kind="stable")
        return flat.edit(
            sub=(sub_idx[order], sub_val[order]),
            insert_after=(single[expand], rep[expand, 1]),
            delete=consumed,
        )


@register
class CaseChanges(_CharPerturbation):
    """Case noise: a letter's case flips ("Paris" → "pAris").

    Magnitude is the fraction of eligible characters flipped (at most 1).
    Eligible: letters whose case swap is one character (any script in the
    Basic Multilingual Plane), when not protected.
    """

    name = "case_changes"
    version = 1
    unit = _CHAR_UNIT
    _n_draws = 1
    _bits = CASE

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        idx = self._chosen(flat, u, magnitude)
        return flat.edit(sub=(idx, _tables().swapcase[flat.codes[idx]]))


@register
class WhitespaceNoise(_CharPerturbation):
    """Whitespace noise: a space is deleted or doubled, or a space splits a word.

    Magnitude is the fraction of eligible characters edited (at most 1).
    Eligible: whitespace characters (a chosen one is deleted, merging two
    words, or doubled, each with probability 1/2) and letters or digits
    followed by another in the same word (a chosen one is followed by an
    inserted space, splitting the word), when not protected.
    """

    name = "whitespace_noise"
    version = 1
    unit = _CHAR_UNIT

    def _eligible_at(self, flat: _Flat, idx: np.ndarray) -> np.ndarray:
        bits = flat.flags_at(idx)
        space = (bits & SPACE) > 0
        alnum = (bits & ALNUM) > 0
        nxt = np.minimum(idx + 1, max(flat.size - 1, 0))
        alnum[alnum] &= flat.same_row_next(idx[alnum])
        alnum[alnum] &= (flat.flags_at(nxt[alnum]) & ALNUM) > 0
        ok = space | alnum
        ok[ok] &= self._free_at(flat, idx[ok])
        ok[alnum & ok] &= self._free_at(flat, idx[alnum & ok] + 1)
        return ok

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        idx = self._chosen(flat, u, magnitude)
        space = (flat.flags_at(idx) & SPACE) > 0
        delete = space & (v[idx] < (1 << 15))
        dup = space & ~delete
        ins = idx[~delete]
        val = np.where(dup[~delete], flat.codes[ins], _SPACE_CODE).astype(np.uint32)
        return flat.edit(insert_after=(ins, val), delete=idx[delete])


# -- word level ---------------------------------------------------------------------------
class _WordPerturbation(TextPerturbation):
    """Words are whitespace-separated tokens; runs alternate words and gaps in each string."""

    _level = "token"

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        return self._free_words(flat, runs)


@register
class PunctuationNoise(_WordPerturbation):
    """Punctuation noise: a word loses its punctuation, or gains a mark at its end.

    Magnitude is the fraction of eligible words edited (at most 1). Words are
    whitespace-separated tokens; eligible words are those not protected. A
    chosen word that contains punctuation loses all of it ("don't," →
    "dont"); a chosen word without punctuation gets one mark from ``marks``
    appended (chosen uniformly).
    """

    name = "punctuation_noise"
    version = 1
    unit = "fraction of eligible words edited (at most 1)"
    _constraints: ClassVar[dict[str, Any]] = {
        **TextPerturbation._constraints,
        "marks": _Marks(),
    }

    def __init__(
        self,
        *,
        marks: str = ".,;:!?",
        protect: Sequence[str] = (),
        protect_numbers: bool = True,
    ) -> None:
        self.marks = marks
        self.protect = protect
        self.protect_numbers = protect_numbers

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        words = runs.words()
        chosen = (u < magnitude) & self._free_words(flat, runs)
        if not chosen.any():
            return flat
        punct = (flat.flags & PUNCT) > 0
        has_punct = runs.any_in_run(punct)[words]
        run_chosen = np.zeros(runs.start.shape[0], bool)
        run_chosen[words[chosen]] = True
        strip = np.flatnonzero(run_chosen[runs.run_of] & punct)
        add = chosen & ~has_punct
        last = runs.start[words[add]] + runs.length[words[add]] - 1
        marks = _encode_str(self.marks)
        mark = marks[_choose(v[add], np.full(int(add.sum()), marks.shape[0]))]
        return flat.edit(insert_after=(last, mark), delete=strip)


@register
class WordDrop(_WordPerturbation):
    """Dropped words: a word disappears with the whitespace after it.

    Magnitude is the fraction of eligible words dropped (at most 1). Words are
    whitespace-separated tokens; eligible words are those not protected. A gap
    is kept only between two surviving words (the first gap after the earlier
    one); leading and trailing whitespace stay.
    """

    name = "word_drop"
    version = 1
    unit = "fraction of eligible words dropped (at most 1)"
    _n_draws = 1

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        words = runs.words()
        drop = (u < magnitude) & self._free_words(flat, runs)
        if not drop.any():
            return flat
        n_runs = runs.start.shape[0]
        is_word = runs.flag
        kept = np.zeros(n_runs, bool)
        kept[words[~drop]] = True
        first = np.searchsorted(runs.row, np.arange(flat.n))[runs.row]  # row's first run

        def upto(x: np.ndarray) -> np.ndarray:  # inclusive count within the row
            cs = np.cumsum(x)
            return cs - np.where(first > 0, cs[np.maximum(first - 1, 0)], 0)

        kept_upto, words_upto = upto(kept), upto(is_word)
        kept_row = np.bincount(runs.row, weights=kept, minlength=flat.n)[runs.row]
        words_row = np.bincount(runs.row, weights=is_word, minlength=flat.n)[runs.row]
        leading = words_upto == 0
        trailing = words_upto == words_row
        prev_kept = np.zeros(n_runs, bool)
        prev_kept[1:] = kept[:-1]
        between = prev_kept & (kept_row - kept_upto > 0)
        keep = np.where(is_word, kept, leading | trailing | between)
        return _assemble(
            flat, np.zeros(0, np.uint32), runs.start[keep], runs.length[keep], runs.row[keep]
        )


@register
class WordDuplicate(_WordPerturbation):
    """Repeated words: a word is typed twice ("the the").

    Magnitude is the fraction of eligible words duplicated (at most 1). Words
    are whitespace-separated tokens; eligible words are those not protected.
    The copy follows the word after one space.
    """

    name = "word_duplicate"
    version = 1
    unit = "fraction of eligible words duplicated (at most 1)"
    _n_draws = 1

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        words = runs.words()
        dup = (u < magnitude) & self._free_words(flat, runs)
        if not dup.any():
            return flat
        reps = np.ones(runs.start.shape[0], np.int64)
        reps[words[dup]] = 3
        seg_run = np.repeat(np.arange(runs.start.shape[0]), reps)
        seg_start = runs.start[seg_run]
        seg_len = runs.length[seg_run]
        middle = (np.cumsum(reps) - reps)[words[dup]] + 1
        seg_start[middle] = flat.size  # the pool: one space
        seg_len[middle] = 1
        return _assemble(
            flat, np.array([_SPACE_CODE], np.uint32), seg_start, seg_len, runs.row[seg_run]
        )


@register
class WordSwap(_WordPerturbation):
    """Word order noise: a word trades places with the next word of its string.

    Magnitude is about the fraction of eligible words moved (at most 1): a
    swap starts at an eligible word whose next word is also eligible with
    probability magnitude / 2, and each swap moves two. Words are whitespace-separated
    tokens; eligible words are those not protected; the gaps stay in place.
    Consecutive starts swap greedily, left to right (see :class:`CharSwap`).
    """

    name = "word_swap"
    version = 1
    unit = "fraction of eligible words moved by a swap with the next word (at most 1)"
    _n_draws = 1

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        words = runs.words()
        ok = self._free_words(flat, runs)
        w_row = runs.row[words]
        next_ok = np.zeros_like(ok)
        next_ok[:-1] = ok[1:] & (w_row[1:] == w_row[:-1])
        site = _thin_sorted(np.flatnonzero((u < magnitude / 2) & ok & next_ok))
        if not site.size:
            return flat
        a, b = words[site], words[site + 1]
        order = np.arange(runs.start.shape[0])
        order[a], order[b] = b, a
        return _assemble(
            flat, np.zeros(0, np.uint32), runs.start[order], runs.length[order], runs.row[order]
        )


# -- synonyms -----------------------------------------------------------------------------
_DEFAULT_LEXICONS = (
    Path("/usr/share/mythes/th_en_US_v2.dat"),
    Path("/usr/share/wordnet"),
)


# Function words are never replaced: a thesaurus maps them to odd senses ("i" -> "iodine").
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)


def _keep_word(word: str) -> bool:
    return len(word) >= 3 and word.isalpha() and word not in _STOPWORDS


def _clean_synonyms(word: str, options: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for s in options:
        if s != word and s.isalpha() and s.islower() and s not in seen:
            seen[s] = None
    return tuple(seen)


def _read_mythes(path: Path) -> dict[str, tuple[str, ...]]:
    """MyThes ``.dat``: ``word|n`` then n meaning lines ``(pos)|syn|syn (similar term)|…``.

    A word's synonyms are the plain entries (its synset) of its first meaning
    that has any: "(similar term)", "(related term)", "(generic term)" and
    "(antonym)" entries are skipped, and so are multi-word synonyms.
    """
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out: dict[str, tuple[str, ...]] = {}
    i = 1  # the first line names the encoding
    while i < len(lines):
        head, _, count = lines[i].rpartition("|")
        n = int(count) if count.isdigit() else 0
        word = head.lower()
        if _keep_word(word) and word not in out:
            for line in lines[i + 1 : i + 1 + n]:
                plain = [s for s in line.split("|")[1:] if "(" not in s and " " not in s]
                syn = _clean_synonyms(word, plain)
                if syn:
                    out[word] = syn
                    break
        i += 1 + n
    return out


def _read_wordnet(folder: Path) -> dict[str, tuple[str, ...]]:
    """WordNet 3.0 dict folder: the other single-word lemmas of the word's first synset.

    ``index.<pos>`` lists a lemma's synsets most frequent first; the part of
    speech whose first synset (with synonyms) is the most frequent (tagged
    sense count) wins.
    """
    best: dict[str, tuple[int, tuple[str, ...]]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        data, index = folder / f"data.{pos}", folder / f"index.{pos}"
        if not (data.exists() and index.exists()):
            continue
        lemmas: dict[int, list[str]] = {}
        with data.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue  # the licence header
                parts = line.split(" ", 4 + 2 * 256)
                n = int(parts[3], 16)
                lemmas[int(parts[0])] = [parts[4 + 2 * k].split("(")[0].lower() for k in range(n)]
        with index.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue
                parts = line.split()
                word = parts[0]
                if not _keep_word(word):
                    continue
                n_ptr = int(parts[3])
                tagged = int(parts[5 + n_ptr])
                for off in parts[6 + n_ptr :]:
                    syn = _clean_synonyms(word, lemmas.get(int(off), []))
                    if syn:
                        if word not in best or tagged > best[word][0]:
                            best[word] = (tagged, syn)
                        break
    return {w: syn for w, (_, syn) in best.items()}


@functools.lru_cache(maxsize=4)
def _load_lexicon_cached(path: str, mtime: float) -> dict[str, tuple[str, ...]]:
    p = Path(path)
    return _read_wordnet(p) if p.is_dir() else _read_mythes(p)


def load_lexicon(path: str | os.PathLike[str] | None = None) -> dict[str, tuple[str, ...]]:
    """The offline thesaurus: lower-case word -> its single-word synonyms, in file order.

    ``path`` is a MyThes ``.dat`` file (Debian ``mythes-en-us``:
    ``/usr/share/mythes/th_en_US_v2.dat``) or a WordNet 3.0 dict folder
    (Debian ``wordnet-base``: ``/usr/share/wordnet``); None tries those two in
    that order. Parsed once per file and cached (a second or two for MyThes).

    Raises:
        MissingExtraError: no thesaurus at ``path`` (or at the default places),
            naming the Debian packages to install.
    """
    if path is None:
        found = next((p for p in _DEFAULT_LEXICONS if p.exists()), None)
        if found is None:
            raise MissingExtraError(
                "SynonymSubstitution needs an offline English thesaurus: apt-get install "
                "mythes-en-us (or wordnet-base), or pass lexicon='/path/to/th_en_US_v2.dat'."
            )
        p = found
    else:
        p = Path(path)
        ok = (p.is_dir() and (p / "data.noun").exists()) or p.is_file()
        if not ok:
            raise MissingExtraError(
                f"The 'lexicon' parameter of SynonymSubstitution names {str(p)!r}, which is not "
                "a MyThes .dat file nor a WordNet dict folder; apt-get install mythes-en-us "
                "(or wordnet-base), or pass the path of one."
            )
    return _load_lexicon_cached(str(p.resolve()), p.stat().st_mtime)


def _match_case(template: str, word: str) -> str:
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


@register
class SynonymSubstitution(TextPerturbation):
    """Synonym substitution from an offline thesaurus ("big house" → "large house").

    Magnitude is the fraction of eligible words replaced (at most 1). Words
    are maximal runs of letters; eligible words are those not protected whose
    lower-case form has at least one single-word synonym in the thesaurus.
    The synonym is chosen uniformly among the synonyms of the word's most
    frequent sense that has any, and takes the word's case pattern (``Big`` →
    ``Large``, ``BIG`` → ``LARGE``). Function words ("the", "in", "i" …) and
    words of fewer than three letters are never replaced.

    ``lexicon`` is the path of a MyThes ``.dat`` file or a WordNet dict
    folder; None uses Debian's ``mythes-en-us``, else ``wordnet-base`` (see
    :func:`load_lexicon`). Only plain single-word synonyms are used: no
    antonyms, hypernyms or "similar terms". The quality is a thesaurus's, not
    a language model's: the sense is not disambiguated ("bad" → "big" can
    happen).
    """

    name = "synonym_substitution"
    version = 1
    unit = "fraction of eligible words replaced by a synonym (at most 1)"
    _level = "letters"
    _constraints: ClassVar[dict[str, Any]] = {
        **TextPerturbation._constraints,
        "lexicon": _Path(),
    }

    def __init__(
        self,
        *,
        lexicon: str | None = None,
        protect: Sequence[str] = (),
        protect_numbers: bool = True,
    ) -> None:
        self.lexicon = lexicon
        self.protect = protect
        self.protect_numbers = protect_numbers

    def _lexicon(self) -> dict[str, tuple[str, ...]]:
        return load_lexicon(self.lexicon)

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        self._lexicon()  # fail before drawing when the thesaurus is missing
        return super().sample(X, rng)

    def _word_strings(self, flat: _Flat, runs: _Runs, which: np.ndarray) -> list[str]:
        big = np.ascontiguousarray(flat.codes, "<u4").tobytes().decode("utf-32-le", "surrogatepass")
        words = runs.words()[which]
        starts = runs.start[words].tolist()
        ends = (runs.start[words] + runs.length[words]).tolist()
        return [big[a:b] for a, b in zip(starts, ends)]

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        lex = self._lexicon()
        free = self._free_words(flat, runs)
        idx = np.flatnonzero(free)
        has = np.fromiter(
            (w.lower() in lex for w in self._word_strings(flat, runs, idx)), bool, idx.shape[0]
        )
        out = np.zeros_like(free)
        out[idx[has]] = True
        return out

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        lex = self._lexicon()
        words = runs.words()
        idx = np.flatnonzero((u < magnitude) & self._free_words(flat, runs))
        if not idx.shape[0]:
            return flat
        chosen: list[int] = []
        replacements: list[str] = []
        for k, w, vv in zip(idx.tolist(), self._word_strings(flat, runs, idx), v[idx].tolist()):
            syn = lex.get(w.lower())
            if syn:
                chosen.append(k)
                replacements.append(_match_case(w, syn[(vv * len(syn)) >> 16]))
        if not chosen:
            return flat
        pool = _encode_str("".join(replacements))
        rep_len = np.fromiter(map(len, replacements), np.int64, len(replacements))
        seg_start = runs.start.copy()
        seg_len = runs.length.copy()
        target = words[np.asarray(chosen)]
        seg_start[target] = flat.size + np.cumsum(rep_len) - rep_len
        seg_len[target] = rep_len
        return _assemble(flat, pool, seg_start, seg_len, runs.row)
