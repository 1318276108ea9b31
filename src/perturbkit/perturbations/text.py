"""Text perturbations of batches of strings: typos, OCR errors, noise, word edits, synonyms.

A batch is a list, tuple, 1-D numpy array or pandas Series of ``str``; the
output is the same kind of container with one string per input string.

**Magnitude** is the fraction of eligible units touched, at most 1. A unit is
a character for the character-level perturbations and a word for the
word-level ones, and *eligible* means the perturbation can act on it and it is
not protected (each class says which units are eligible). ``sample`` draws one
uniform ``u`` per unit (and one ``v`` per unit to choose the replacement);
a unit is touched iff ``u < magnitude``, so what is touched at 0.1 is also
touched at 0.2, with the same replacement (common random numbers), and the
expected fraction of eligible units touched is exactly the magnitude (the
swaps touch two units per edit; see :class:`CharSwap` and :class:`WordSwap`).

**Protected tokens.** ``protect_numbers=True`` (the default) leaves every
whitespace-separated token that contains a digit untouched ("3.5", "$20",
"A4", "2024-01-02"); ``protect=["New York", "ACME"]`` leaves every exact,
case-sensitive occurrence of those strings untouched. Word-level
perturbations never drop, move, duplicate or replace a word that overlaps a
protected span.

**How it runs.** The batch is encoded once into one flat array of Unicode
code points; every edit is a vectorised numpy operation on that array (table
look-ups, masks, a splice that emits 0, 1 or 2 code points per character, a
gather of word segments), and the strings are decoded once at the end. Only
the synonym look-up touches Python objects per word (a dictionary look-up of
the candidate words). Character classes (letter, digit, space, punctuation,
case) cover the Basic Multilingual Plane; code points above U+FFFF (emoji) are
never edited. The draws are per unit of the batch being perturbed: the same
string in another batch gets other edits, as with every perturbation. When a
step of a :class:`~perturbkit.Combine` or :class:`~perturbkit.Compose` runs on
text that an earlier step lengthened, the extra units reuse the row's draws
cyclically.

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


# -- character tables ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Tables:
    alnum: np.ndarray
    alpha: np.ndarray
    digit: np.ndarray
    space: np.ndarray
    punct: np.ndarray
    swapcase: np.ndarray  # 0 where the case swap is not one code point


@functools.cache
def _tables() -> _Tables:
    chars = [chr(c) for c in range(_BMP)]
    alpha = np.fromiter((ch.isalpha() for ch in chars), bool, _BMP)
    digit = np.fromiter((ch.isdigit() for ch in chars), bool, _BMP)
    space = np.fromiter((ch.isspace() for ch in chars), bool, _BMP)
    punct = np.fromiter((unicodedata.category(ch).startswith("P") for ch in chars), bool, _BMP)

    def swapped(ch: str) -> int:
        s = ch.swapcase()
        return ord(s) if len(s) == 1 and s != ch and ord(s) < _BMP else 0

    swap = np.fromiter((swapped(ch) for ch in chars), np.uint32, _BMP)
    return _Tables(alpha | digit, alpha, digit, space, punct, swap)


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[code]`` for BMP code points; False / 0 above (table[0xFFFF] is False / 0)."""
    return table[np.minimum(codes, _BMP - 1)]


_QWERTY = ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./")


@functools.cache
def _keyboard() -> tuple[np.ndarray, np.ndarray]:
    """``(neighbours (128, 8), counts (128,))``: QWERTY neighbours of ASCII letters and digits."""
    pos = {ch: (r, c) for r, row in enumerate(_QWERTY) for c, ch in enumerate(row)}
    nb = np.zeros((128, 8), np.uint32)
    count = np.zeros(128, np.int64)
    for ch, (r, c) in pos.items():
        if not ch.isalnum():
            continue
        cells = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
        near = [_QWERTY[rr][cc] for rr, cc in cells if 0 <= rr < 4 and 0 <= cc < len(_QWERTY[rr])]
        for key, chars in ((ch, near), (ch.upper(), [n.upper() for n in near])):
            if key != ch and not key.isalpha():
                continue
            nb[ord(key), : len(chars)] = [ord(n) for n in chars]
            count[ord(key)] = len(chars)
    return nb, count


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


@functools.cache
def _ocr() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(candidates (128, 3, 2), counts (128,), contract (128, 128))`` for ASCII codes."""
    cand = np.zeros((128, 3, 2), np.uint32)
    count = np.zeros(128, np.int64)
    keys = set(_OCR_SUBSTITUTE) | set(_OCR_EXPAND)
    for ch in keys:
        options = _OCR_SUBSTITUTE.get(ch, ()) + _OCR_EXPAND.get(ch, ())
        for k, rep in enumerate(options):
            cand[ord(ch), k, : len(rep)] = [ord(r) for r in rep]
        count[ord(ch)] = len(options)
    contract = np.zeros((128, 128), np.uint32)
    for pair, target in _OCR_CONTRACT.items():
        contract[ord(pair[0]), ord(pair[1])] = ord(target)
    return cand, count, contract


# -- the flat batch ------------------------------------------------------------------------
class _Flat:
    """A batch as one flat array of code points, with each string's length."""

    __slots__ = ("_row", "_row_start", "codes", "lengths", "n", "starts")

    def __init__(self, codes: np.ndarray, lengths: np.ndarray) -> None:
        self.codes = codes
        self.lengths = lengths
        self.n = lengths.shape[0]
        self.starts = np.cumsum(lengths) - lengths
        self._row: np.ndarray | None = None
        self._row_start: np.ndarray | None = None

    @classmethod
    def encode(cls, strings: list[str]) -> _Flat:
        lengths = np.fromiter(map(len, strings), np.int64, len(strings))
        raw = "".join(strings).encode("utf-32-le", "surrogatepass")
        return cls(np.frombuffer(raw, "<u4"), lengths)

    def decode(self) -> list[str]:
        big = np.ascontiguousarray(self.codes, "<u4").tobytes().decode("utf-32-le", "surrogatepass")
        ends = (self.starts + self.lengths).tolist()
        return [big[a:b] for a, b in zip(self.starts.tolist(), ends)]

    @property
    def size(self) -> int:
        return int(self.codes.shape[0])

    @property
    def row(self) -> np.ndarray:
        """The row (string index) of each code point."""
        if self._row is None:
            self._row = np.repeat(np.arange(self.n), self.lengths)
        return self._row

    @property
    def row_start(self) -> np.ndarray:
        """True at the first code point of each string."""
        if self._row_start is None:
            rs = np.zeros(self.size, bool)
            rs[self.starts[self.lengths > 0]] = True
            self._row_start = rs
        return self._row_start

    def next_in_row(self) -> np.ndarray:
        """True where the next code point exists and belongs to the same string."""
        ok = np.zeros(self.size, bool)
        if self.size:
            ok[:-1] = ~self.row_start[1:]
        return ok

    def shifted(self, a: np.ndarray, fill: Any) -> np.ndarray:
        """``a[i + 1]`` where the next code point is in the same string, else ``fill``."""
        out = np.full_like(a, fill)
        if self.size:
            out[:-1] = a[1:]
            out[~self.next_in_row()] = fill
        return out

    def splice(self, emit: np.ndarray, keep: np.ndarray) -> _Flat:
        """Each code point emits ``emit[i, :]`` where ``keep[i, :]``, in order."""
        per = keep.sum(axis=1)
        cs = np.concatenate([[0], np.cumsum(per)])
        lengths = cs[self.starts + self.lengths] - cs[self.starts]
        return _Flat(emit[keep], lengths)

    def substitute(self, where: np.ndarray, new: np.ndarray) -> _Flat:
        return _Flat(np.where(where, new, self.codes).astype(np.uint32), self.lengths)


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
        return cls(start, length, flat.row[start], flag[start], np.cumsum(change) - 1)

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


def _thin_runs(site: np.ndarray) -> np.ndarray:
    """Keep every other site of each run of consecutive sites, from the run's start.

    Sites whose edit spans two units (a swap, an OCR contraction) may not
    overlap; this keeps the first, third … of a run (greedy, left to right).
    """
    if not site.any():
        return site
    idx = np.arange(site.shape[0])
    prev = np.zeros_like(site)
    prev[1:] = site[:-1]
    first = site & ~prev
    run_start = np.maximum.accumulate(np.where(first, idx, 0))
    return site & ((idx - run_start) % 2 == 0)


def _align(draw: np.ndarray, drawn: np.ndarray, counts: np.ndarray, fill: float) -> np.ndarray:
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
    out = np.full(total, fill, dtype=np.float64)
    has = d > 0
    out[has] = draw[src[has]]
    return out


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
        return isinstance(v, str) and len(v) > 0 and "\x00" not in v

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

    Subclasses set ``_level`` (``"char"``, ``"token"`` or ``"letters"``: the
    units drawn for), ``_n_draws`` (1: ``u``; 2: ``u`` and ``v``) and
    implement :meth:`_edit`.
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
        owner = type(self).__name__
        token: Any
        if isinstance(X, (str, bytes)):
            raise DataError(
                f"{owner} needs a batch of strings (a list or 1-D array of str). Got a single "
                f"{type(X).__name__} instead; wrap it in a list: [text]."
            )
        if hasattr(X, "index") and hasattr(X, "to_numpy") and not hasattr(X, "columns"):
            token = ("series", X.index, X.name)
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
        if not set(map(type, items)) <= {str, np.str_}:
            i = next(k for k, s in enumerate(items) if not isinstance(s, str))
            raise DataError(
                f"{owner} needs a batch of strings; item {i} is a {type(items[i]).__name__} "
                f"({items[i]!r}). Convert it with str() or drop it."
            )
        arr = np.empty(len(items), dtype=object)
        arr[:] = [str(s) for s in items] if np.str_ in set(map(type, items)) else items
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

            return pd.Series(items, index=info, name=token[2], dtype=object)
        if info == object:
            return X_new.copy()
        return np.asarray(items, dtype=str) if items else np.asarray([], dtype=info)

    # -- protection -------------------------------------------------------------------------
    def _protected(self, flat: _Flat) -> np.ndarray:
        """True for every code point that no edit may touch."""
        t = _tables()
        n = flat.size
        prot = np.zeros(n, bool)
        if n == 0:
            return prot
        codes = flat.codes
        if self.protect_numbers:
            space = _lookup(t.space, codes)
            tokens = _Runs.of(flat, ~space)
            has_digit = tokens.any_in_run(_lookup(t.digit, codes))
            prot |= has_digit[tokens.run_of] & ~space
        for entity in self.protect:
            e = np.frombuffer(entity.encode("utf-32-le", "surrogatepass"), "<u4")
            k = e.shape[0]
            if k > n:
                continue
            cand = np.flatnonzero(codes[: n - k + 1] == e[0])
            for i in range(1, k):
                cand = cand[codes[cand + i] == e[i]]
            ends = flat.starts + flat.lengths
            cand = cand[cand + k <= ends[flat.row[cand]]]
            if cand.size:
                cover = np.bincount(cand, minlength=n + 1) - np.bincount(cand + k, minlength=n + 1)
                prot |= np.cumsum(cover)[:n] > 0
        return prot

    # -- draws ------------------------------------------------------------------------------
    def _units(self, flat: _Flat) -> tuple[np.ndarray, _Runs | None]:
        """Units per row for this class's level, and the runs (word levels)."""
        if self._level == "char":
            return flat.lengths, None
        t = _tables()
        if self._level == "token":
            flag = ~_lookup(t.space, flat.codes)
        else:  # letters
            flag = _lookup(t.alpha, flat.codes)
        runs = _Runs.of(flat, flag)
        words = runs.words()
        return np.bincount(runs.row[words], minlength=flat.n).astype(np.int64), runs

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """One uniform ``u`` per unit (and ``v`` to choose the replacement), plus unit counts.

        The units are the characters (their number is each string's length)
        or the words of each string; nothing depends on the magnitude.
        """
        strings = X.tolist()
        if self._level == "char":
            counts = np.fromiter(map(len, strings), np.int64, len(strings))
        else:
            counts, _ = self._units(_Flat.encode(strings))
        m = int(counts.sum())
        u = rng.random(m)
        if self._n_draws == 1:
            return u, counts
        return u, rng.random(m), counts

    def apply(self, X: np.ndarray, params: tuple[np.ndarray, ...], magnitude: float) -> np.ndarray:
        if magnitude == 0 or X.shape[0] == 0:
            return X.copy()
        flat = _Flat.encode(X.tolist())
        counts, runs = self._units(flat)
        drawn = params[-1]
        u = _align(params[0], drawn, counts, np.inf)
        v = _align(params[1], drawn, counts, 0.0) if self._n_draws == 2 else None
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
        _, runs = self._units(flat)
        elig = self._eligible(flat, runs)
        row = flat.row if runs is None else runs.row[runs.words()]
        return np.bincount(row[elig], minlength=flat.n)

    # -- for subclasses -------------------------------------------------------------------
    def _eligible(self, flat: _Flat, runs: _Runs | None) -> np.ndarray:
        """Per unit (character, or word in order): whether an edit may touch it."""
        raise NotImplementedError

    def _edit(
        self,
        flat: _Flat,
        runs: _Runs | None,
        u: np.ndarray,
        v: np.ndarray | None,
        magnitude: float,
    ) -> _Flat:
        raise NotImplementedError

    def _free_words(self, flat: _Flat, runs: _Runs) -> np.ndarray:
        """Per word run (in order): not overlapping a protected code point."""
        return ~runs.any_in_run(self._protected(flat))[runs.words()]


def _choose(v: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Index ``floor(v * count)`` in ``[0, count)``."""
    return np.minimum((v * count).astype(np.int64), np.maximum(count - 1, 0))


def _keys(flat: _Flat) -> tuple[np.ndarray, np.ndarray]:
    """Per code point: its ASCII code (127 above) and its number of QWERTY neighbours."""
    _, count = _keyboard()
    ascii_ = np.minimum(flat.codes, 127)
    return ascii_, np.where(flat.codes < 128, count[ascii_], 0)


# -- character level ----------------------------------------------------------------------
_CHAR_UNIT = "fraction of eligible characters edited (at most 1)"


@register
class KeyboardTypos(TextPerturbation):
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

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        return (_keys(flat)[1] > 0) & ~self._protected(flat)

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        nb, _ = _keyboard()
        ascii_, k = _keys(flat)
        idx = np.flatnonzero((u < magnitude) & (k > 0) & ~self._protected(flat))
        new = flat.codes.copy()
        new[idx] = nb[ascii_[idx], _choose(v[idx], k[idx])]
        return _Flat(new, flat.lengths)


@register
class CharSwap(TextPerturbation):
    """Adjacent characters trade places: "form" → "from".

    A swap starts at an eligible character whose right neighbour is also
    eligible, with probability magnitude / 2 per character, so about a
    fraction magnitude of the eligible characters move (each swap moves two).
    Eligible: letters and digits that are not protected. Where consecutive
    characters both start a swap, the first, third … of the run swap
    (greedy, left to right), so at large magnitudes fewer move: at magnitude
    1 about two thirds.
    """

    name = "char_swap"
    version = 1
    unit = "fraction of eligible characters moved by a swap with a neighbour (at most 1)"
    _n_draws = 1

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        return _lookup(_tables().alnum, flat.codes) & ~self._protected(flat)

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        cand = u < magnitude / 2
        if not cand.any():
            return flat
        ok = self._eligible(flat, runs)
        site = _thin_runs(cand & ok & flat.shifted(ok, False))
        idx = np.flatnonzero(site)
        order = np.arange(flat.size)
        order[idx], order[idx + 1] = idx + 1, idx
        return _Flat(flat.codes[order], flat.lengths)


@register
class CharInsert(TextPerturbation):
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

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        return (_keys(flat)[1] > 0) & ~self._protected(flat)

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        nb, _ = _keyboard()
        ascii_, k = _keys(flat)
        sel = (u < magnitude) & (k > 0) & ~self._protected(flat)
        emit = np.zeros((flat.size, 2), np.uint32)
        emit[:, 0] = flat.codes
        idx = np.flatnonzero(sel)
        emit[idx, 1] = nb[ascii_[idx], _choose(v[idx], k[idx])]
        keep = np.zeros((flat.size, 2), bool)
        keep[:, 0] = True
        keep[:, 1] = sel
        return flat.splice(emit, keep)


@register
class CharDelete(TextPerturbation):
    """Dropped keystrokes: a letter or digit is deleted.

    Magnitude is the fraction of eligible characters deleted (at most 1).
    Eligible: letters and digits (any script) that are not protected; spaces
    and punctuation stay.
    """

    name = "char_delete"
    version = 1
    unit = "fraction of eligible characters deleted (at most 1)"
    _n_draws = 1

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        return _lookup(_tables().alnum, flat.codes) & ~self._protected(flat)

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        sel = u < magnitude
        if not sel.any():
            return flat
        sel &= self._eligible(flat, runs)
        return flat.splice(flat.codes[:, None], ~sel[:, None])


@register
class OcrErrors(TextPerturbation):
    """OCR confusions: 0/O, l/1/I, S/5, B/8, Z/2, g/9, e/c, rn → m, m → rn, cl ↔ d, vv ↔ w.

    Magnitude is the fraction of eligible characters misread (at most 1).
    Eligible: characters with a confusion (``_OCR_SUBSTITUTE`` and
    ``_OCR_EXPAND`` in the source) and the first character of a confusable
    pair ("rn", "cl", "vv"), when not protected. A chosen pair start merges the
    pair into one character; a chosen single character becomes one of its
    confusions, chosen uniformly. Digits in numbers are protected by default:
    pass ``protect_numbers=False`` to misread them too.
    """

    name = "ocr_errors"
    version = 1
    unit = _CHAR_UNIT

    def _parts(self, flat: _Flat) -> tuple[np.ndarray, ...]:
        _, count, contract = _ocr()
        ascii_ = np.minimum(flat.codes, 127)
        is_ascii = flat.codes < 128
        free = ~self._protected(flat)
        nxt = flat.shifted(ascii_, 0)
        merged = np.where(is_ascii & flat.shifted(is_ascii, False), contract[ascii_, nxt], 0)
        pairable = free & flat.shifted(free, False) & (merged > 0)
        k = np.where(is_ascii, count[ascii_], 0)
        return ascii_, free, merged, pairable, k

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        _, free, _, pairable, k = self._parts(flat)
        return pairable | (free & (k > 0))

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        chosen = u < magnitude
        if not chosen.any():
            return flat
        cand_table, _, _ = _ocr()
        ascii_, free, merged, pairable, k = self._parts(flat)
        pair = _thin_runs(chosen & pairable)
        consumed = np.zeros_like(pair)
        consumed[1:] = pair[:-1]
        single = chosen & free & (k > 0) & ~pair & ~consumed
        emit = np.zeros((flat.size, 2), np.uint32)
        emit[:, 0] = flat.codes
        keep = np.zeros((flat.size, 2), bool)
        keep[:, 0] = ~consumed
        idx = np.flatnonzero(single)
        rep = cand_table[ascii_[idx], _choose(v[idx], k[idx])]
        emit[idx] = rep
        keep[idx, 1] = rep[:, 1] > 0
        emit[pair, 0] = merged[pair]
        return flat.splice(emit, keep)


@register
class CaseChanges(TextPerturbation):
    """Case noise: a letter's case flips ("Paris" → "pAris").

    Magnitude is the fraction of eligible characters flipped (at most 1).
    Eligible: letters whose case swap is one character (any script in the
    Basic Multilingual Plane), when not protected.
    """

    name = "case_changes"
    version = 1
    unit = _CHAR_UNIT
    _n_draws = 1

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        return (_lookup(_tables().swapcase, flat.codes) > 0) & ~self._protected(flat)

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        sel = u < magnitude
        if not sel.any():
            return flat
        swapped = _lookup(_tables().swapcase, flat.codes)
        sel &= (swapped > 0) & ~self._protected(flat)
        return flat.substitute(sel, swapped)


@register
class WhitespaceNoise(TextPerturbation):
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

    def _classes(self, flat: _Flat) -> tuple[np.ndarray, np.ndarray]:
        t = _tables()
        free = ~self._protected(flat)
        space = _lookup(t.space, flat.codes) & free
        alnum = _lookup(t.alnum, flat.codes) & free
        return space, alnum & flat.shifted(alnum, False)

    def _eligible(self, flat, runs):  # type: ignore[no-untyped-def]
        space, splittable = self._classes(flat)
        return space | splittable

    def _edit(self, flat, runs, u, v, magnitude):  # type: ignore[no-untyped-def]
        chosen = u < magnitude
        if not chosen.any():
            return flat
        space, split = self._classes(flat)
        space &= chosen
        split &= chosen
        emit = np.zeros((flat.size, 2), np.uint32)
        emit[:, 0] = flat.codes
        emit[:, 1] = np.where(split, _SPACE_CODE, flat.codes)
        keep = np.zeros((flat.size, 2), bool)
        delete = space & (v < 0.5)
        keep[:, 0] = ~delete
        keep[:, 1] = split | (space & ~delete)
        return flat.splice(emit, keep)


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
        punct = _lookup(_tables().punct, flat.codes)
        has_punct = runs.any_in_run(punct)[words]
        run_chosen = np.zeros(runs.start.shape[0], bool)
        run_chosen[words[chosen]] = True
        strip = run_chosen[runs.run_of] & punct
        add = words[chosen & ~has_punct]
        add_v = v[chosen & ~has_punct]
        marks = np.frombuffer(self.marks.encode("utf-32-le", "surrogatepass"), "<u4")
        last = runs.start[add] + runs.length[add] - 1
        emit = np.zeros((flat.size, 2), np.uint32)
        emit[:, 0] = flat.codes
        emit[last, 1] = marks[_choose(add_v, np.full(add.shape, marks.shape[0]))]
        keep = np.zeros((flat.size, 2), bool)
        keep[:, 0] = ~strip
        keep[last, 1] = True
        return flat.splice(emit, keep)


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
            return cs - np.where(first > 0, cs[first - 1], 0)

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

    A swap starts at an eligible word whose next word is also eligible, with
    probability magnitude / 2 per word, so about a fraction magnitude of the
    eligible words move (each swap moves two). Words are whitespace-separated
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
        site = _thin_runs((u < magnitude / 2) & ok & next_ok)
        if not site.any():
            return flat
        a = words[site]
        b = words[np.flatnonzero(site) + 1]
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


def _clean_synonyms(word: str, options: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for s in options:
        if s != word and s.isalpha() and s.islower() and s not in seen:
            seen[s] = None
    return tuple(seen)


def _read_mythes(path: Path) -> dict[str, tuple[str, ...]]:
    """MyThes ``.dat``: ``word|n`` then n lines ``(pos)|syn|syn (similar term)|…``.

    Only plain synonyms (the word's synset) are kept: "(similar term)",
    "(related term)", "(generic term)" and "(antonym)" entries are skipped.
    """
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out: dict[str, tuple[str, ...]] = {}
    i = 1  # the first line names the encoding
    while i < len(lines):
        head, _, count = lines[i].rpartition("|")
        n = int(count) if count.isdigit() else 0
        options = [
            s
            for line in lines[i + 1 : i + 1 + n]
            for s in line.split("|")[1:]
            if "(" not in s and " " not in s
        ]
        word = head.lower()
        if word.isalpha():
            syn = _clean_synonyms(word, options)
            if syn:
                out[word] = out.get(word, ()) + tuple(s for s in syn if s not in out.get(word, ()))
        i += 1 + n
    return out


def _read_wordnet(folder: Path) -> dict[str, tuple[str, ...]]:
    """WordNet 3.0 ``data.{noun,verb,adj,adv}``: the other single words of each synset."""
    groups: dict[str, list[str]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        f = folder / f"data.{pos}"
        if not f.exists():
            continue
        with f.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue  # the licence header
                parts = line.split(" ", 4 + 2 * 64)
                n = int(parts[3], 16)
                lemmas = [parts[4 + 2 * k].split("(")[0].lower() for k in range(n)]
                single = [w for w in lemmas if w.isalpha()]
                for w in single:
                    groups.setdefault(w, []).extend(single)
    return {w: syn for w, opts in groups.items() if (syn := _clean_synonyms(w, opts))}


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
    The synonym is chosen uniformly among them (all senses of the word, in the
    thesaurus's order) and takes the word's case pattern (``Big`` → ``Large``,
    ``BIG`` → ``LARGE``). ``lexicon`` is the path of a MyThes ``.dat`` file or
    a WordNet dict folder; None uses Debian's ``mythes-en-us``, else
    ``wordnet-base`` (see :func:`load_lexicon`). Only the thesaurus's plain
    synonyms are used: no antonyms, hypernyms or "similar terms".
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
                replacements.append(_match_case(w, syn[min(int(vv * len(syn)), len(syn) - 1)]))
        if not chosen:
            return flat
        pool = np.frombuffer("".join(replacements).encode("utf-32-le", "surrogatepass"), "<u4")
        rep_len = np.fromiter(map(len, replacements), np.int64, len(replacements))
        seg_start = runs.start.copy()
        seg_len = runs.length.copy()
        target = words[np.asarray(chosen)]
        seg_start[target] = flat.size + np.cumsum(rep_len) - rep_len
        seg_len[target] = rep_len
        return _assemble(flat, pool, seg_start, seg_len, runs.row)
