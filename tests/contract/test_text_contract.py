"""Every registered text perturbation keeps the shared Perturbation contract.

``perturbkit.testing.check_perturbation`` assumes numeric arrays in three
places: ``_check_output`` requires a floating output dtype, ``_equal`` runs
``isnan`` when either side is floating (an empty list is), and
``_snapshot``/``_untouched`` compare the bytes of ``np.asarray(X)`` (for a
pandas ``str`` Series those are fresh object pointers on every call). The
text forms below (same container, same length, every item a ``str``;
compare values) are patched in for the duration of each test; every other
property is checked by the shared code unchanged. ``EXPECTED`` lists the
parameter variants to check per name: a new text perturbation without an
entry fails ``test_every_text_perturbation_has_an_entry``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from perturbkit import perturbations
from perturbkit.perturbations import Combine, Compose, Perturbation
from perturbkit.testing import checks
from perturbkit.testing.checks import check_perturbation

HAS_LEXICON = (
    Path("/usr/share/mythes/th_en_US_v2.dat").exists()
    or Path("/usr/share/wordnet/data.noun").exists()
)
NEEDS_LEXICON = {"synonym_substitution"}

PROTECT = {"protect": ["New York", "ACME"]}
# name -> parameter variants to run the contract on (first: defaults).
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "keyboard_typos": [{}, {"protect_numbers": False}, PROTECT],
    "char_swap": [{}, {"protect_numbers": False}, PROTECT],
    "char_insert": [{}, {"protect_numbers": False}, PROTECT],
    "char_delete": [{}, {"protect_numbers": False}, PROTECT],
    "ocr_errors": [{}, {"protect_numbers": False}, PROTECT],
    "case_changes": [{}, PROTECT],
    "punctuation_noise": [{}, {"marks": "!?"}, PROTECT],
    "whitespace_noise": [{}, PROTECT],
    "word_drop": [{}, PROTECT],
    "word_duplicate": [{}, PROTECT],
    "word_swap": [{}, PROTECT],
    "synonym_substitution": [{}, PROTECT],
}

SENTENCES = [
    "If you could eat food, what would you eat? Probably pizza, I hear it's good!",
    "The modern Turing test asks whether a machine can pass for human.",
    "ACME shipped 2,400 units to New York on 2024-03-01 at $3.50 each.",
    "",
    "   leading and trailing   ",
    "rn cl vv mm dd OIL 0l1 Straße Éclair naïve 東京 🙂",
    "tab\tseparated\nlines",
]

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _is_text(X: Any) -> bool:
    if isinstance(X, np.ndarray):
        return X.ndim == 1 and X.dtype.kind in "UO"
    if isinstance(X, pd.Series):
        return X.dtype == object or pd.api.types.is_string_dtype(X.dtype)
    return isinstance(X, (list, tuple)) and all(isinstance(s, str) for s in X)


_numeric_check_output = checks._check_output


def _check_text_output(p: Perturbation, X: Any, out: Any, arr: np.ndarray, m: float) -> None:
    """The text form of checks._check_output: same container, same length, all str."""
    if not _is_text(X):
        _numeric_check_output(p, X, out, arr, m)
        return
    if type(out) is not type(X):
        raise checks._fail(p, f"a {type(X).__name__} in gave a {type(out).__name__} out at {m}.")
    if len(out) != len(arr):
        raise checks._fail(p, f"{len(out)} strings out at magnitude {m}; {len(arr)} in.")
    if not all(isinstance(s, str) for s in list(out)):
        raise checks._fail(p, f"the output at magnitude {m} holds a non-str item.")
    if isinstance(X, pd.Series) and not out.index.equals(X.index):
        raise checks._fail(p, f"the output at magnitude {m} lost the Series' index.")


_numeric_snapshot, _numeric_untouched = checks._snapshot, checks._untouched


def _text_snapshot(X: Any) -> Any:
    """Text values by value: a Series of str gives new objects on each np.asarray."""
    if _is_text(X):
        return ("text", list(X), X.index.copy() if isinstance(X, pd.Series) else None)
    return _numeric_snapshot(X)


def _text_untouched(X: Any, snap: Any) -> bool:
    if isinstance(snap, tuple) and len(snap) == 3 and snap[0] == "text":
        same_index = snap[2] is None or X.index.equals(snap[2])
        return list(X) == snap[1] and same_index
    return bool(_numeric_untouched(X, snap))


_numeric_equal = checks._equal


def _text_equal(a: Any, b: Any) -> bool:
    """Equal values; strings compared as Python lists (NaN tests need numbers)."""
    if _is_text(a) or _is_text(b):  # not via np.asarray: '<U' drops trailing NULs
        as_list = [x.tolist() if isinstance(x, np.ndarray) else list(x) for x in (a, b)]
        return as_list[0] == as_list[1]
    return bool(_numeric_equal(a, b))


@pytest.fixture(autouse=True)
def text_aware_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The places where checks.py assumes numbers, in their text form."""
    monkeypatch.setattr(checks, "_check_output", _check_text_output)
    monkeypatch.setattr(checks, "_equal", _text_equal)
    monkeypatch.setattr(checks, "_snapshot", _text_snapshot)
    monkeypatch.setattr(checks, "_untouched", _text_untouched)


def _skip_without_lexicon(name: str) -> None:
    if name in NEEDS_LEXICON and not HAS_LEXICON:
        pytest.skip("needs an offline thesaurus: apt-get install mythes-en-us (or wordnet-base)")


def test_every_text_perturbation_has_an_entry() -> None:
    registered = set(perturbations.list("text"))
    missing, stale = sorted(registered - set(EXPECTED)), sorted(set(EXPECTED) - registered)
    assert not missing and not stale, f"missing: {missing}; stale: {stale}"


def test_units_are_documented() -> None:
    for name in perturbations.list("text"):
        info = perturbations.describe(name)
        assert info["modality"] == "text"
        assert info["max_magnitude"] == 1.0, name
        assert "fraction" in info["unit"], name
        assert "Magnitude" in (perturbations.get_class(name).__doc__ or ""), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_contract_on_sentences(name: str) -> None:
    _skip_without_lexicon(name)
    for params in EXPECTED[name]:
        p = perturbations.get(name, **params)
        check_perturbation(p, SENTENCES, magnitudes=(0.1, 0.5, 1.0))
        check_perturbation(p, tuple(SENTENCES[:3]))
        check_perturbation(p, np.asarray(SENTENCES))
        check_perturbation(p, np.asarray(SENTENCES, dtype=object))
        check_perturbation(p, pd.Series(SENTENCES, index=range(10, 10 + len(SENTENCES))))
        # No units to draw for (no strings, or no characters): the identity, for any seed.
        for empty in ([], [""], np.asarray([], dtype=str)):
            for m in (0.0, 0.5, 1.0):
                out = p(empty, m, 0)
                assert type(out) is type(empty) and list(out) == list(empty)


_ALPHABET = st.one_of(
    st.sampled_from(list("aeiourstnmlcdvwOIl01 5 .,;!?'-\t")),
    st.characters(codec="utf-8"),
)


@st.composite
def batches(draw: st.DrawFn) -> list[str]:
    words = st.text(_ALPHABET, max_size=40)
    return draw(st.lists(words, min_size=1, max_size=12))


@pytest.mark.parametrize("name", sorted(EXPECTED))
@SETTINGS
@given(data=st.data())
def test_contract(name: str, data: st.DataObject) -> None:
    _skip_without_lexicon(name)
    params = data.draw(st.sampled_from(EXPECTED[name]), label="params")
    p = perturbations.get(name, **params)
    X = data.draw(batches(), label="X")
    counts = p.sample(p.prepare(X)[0], np.random.default_rng(0))[-1]
    assume(counts.sum() > 0)  # with nothing to draw for, two seeds draw the same (nothing)
    m = st.floats(1e-3, 1.0, allow_nan=False)
    mags = tuple(sorted(data.draw(st.tuples(m, m), label="magnitudes")))
    seed = data.draw(st.integers(0, 2**32), label="seed")
    check_perturbation(p, X, magnitudes=mags, seed=seed)


@pytest.mark.parametrize(
    "group",
    [
        Compose(["keyboard_typos", "word_drop", "case_changes"]),
        Compose(["char_insert", "char_delete", "whitespace_noise"], weights=[1, 0.5, 0.2]),
        Combine(["ocr_errors", "word_swap"]),
        Combine(["word_duplicate", "char_swap", "punctuation_noise"]),
    ],
    ids=lambda g: g.label[:60],
)
def test_contract_of_text_pipelines(group: Perturbation) -> None:
    check_perturbation(group, SENTENCES, magnitudes=(0.1, 0.4, 1.0))
