"""Every registered text perturbation keeps the shared Perturbation contract.

``perturbkit.testing.check_perturbation`` is called unchanged: it knows text
batches (a list, tuple, 1-D array or Series of ``str``) and checks that the
output is the same container with one ``str`` per input string, comparing
values as Python lists. ``EXPECTED`` lists the parameter variants to check
per name: a new text perturbation without an entry fails
``test_every_text_perturbation_has_an_entry``.
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
from perturbkit.testing import check_perturbation

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


# -- the text checks catch broken text perturbations --------------------------------------
class _TupleToList(perturbations.get_class("keyboard_typos")):  # type: ignore[misc]
    """Broken: a tuple in gives a list out. Magnitude: as keyboard_typos."""

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        return X_new.tolist()


class _DropsOne(perturbations.get_class("keyboard_typos")):  # type: ignore[misc]
    """Broken: one string fewer out. Magnitude: as keyboard_typos."""

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        return super().restore(X_new, token)[:-1]


class _NoneForEmpty(perturbations.get_class("keyboard_typos")):  # type: ignore[misc]
    """Broken: an empty string comes back as None. Magnitude: as keyboard_typos."""

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        return [s or None for s in super().restore(X_new, token)]


class _LosesIndex(perturbations.get_class("keyboard_typos")):  # type: ignore[misc]
    """Broken: a Series comes back with a fresh index. Magnitude: as keyboard_typos."""

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        return super().restore(X_new, token).reset_index(drop=True)


class _WritesX(perturbations.get_class("keyboard_typos")):  # type: ignore[misc]
    """Broken: apply edits its input array in place. Magnitude: as keyboard_typos."""

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        out = super().apply(X, params, magnitude)
        if magnitude > 0:
            X[:] = out
        return out


class _WritesCaller(perturbations.get_class("keyboard_typos")):  # type: ignore[misc]
    """Broken: upper-cases the caller's list. Magnitude: as keyboard_typos."""

    def prepare(self, X: Any) -> tuple[np.ndarray, Any]:
        if isinstance(X, list):
            X[:] = [s.upper() for s in X]
        return super().prepare(X)


@pytest.mark.parametrize(
    ("cls", "X", "message"),
    [
        (_TupleToList, tuple(SENTENCES), "a tuple in gave a list out"),
        (_DropsOne, SENTENCES, "6 strings out at magnitude 0.0; 7 in"),
        (_NoneForEmpty, SENTENCES, "holds a NoneType at item 3"),
        (_LosesIndex, pd.Series(SENTENCES, index=range(5, 12)), "lost the Series' index"),
        (_WritesX, SENTENCES, r"apply\(X, params, 0.1\) modified X in place"),
        (_WritesCaller, SENTENCES, "the caller's X was modified in place"),
    ],
)
def test_text_checks_catch_broken_perturbations(cls: type, X: Any, message: str) -> None:
    X = list(X) if isinstance(X, list) else X  # _WritesCaller writes it
    with pytest.raises(AssertionError, match=message) as info:
        check_perturbation(cls(), X)
    text = str(info.value)  # names the perturbation, then what broke
    assert text.startswith(f"{cls.__name__}(") and "(keyboard_typos@1)" in text
