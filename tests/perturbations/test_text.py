"""Text perturbations: the touched fraction is the magnitude, edits nest, protection holds.

Statistical checks compare the realised count of touched units with its
binomial expectation (a few standard errors), on a fixed corpus with fixed
seeds, so they are exact to rerun. The real model is a TF-IDF character
n-gram logistic regression on the chatterbot-corpus utterances.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import perturbkit as pk
from perturbkit import perturbations
from perturbkit.exceptions import DataError, MissingExtraError, ParameterError
from perturbkit.perturbations import Combine, Compose
from perturbkit.perturbations.text import (
    CaseChanges,
    CharDelete,
    CharInsert,
    CharSwap,
    KeyboardTypos,
    OcrErrors,
    PunctuationNoise,
    SynonymSubstitution,
    WhitespaceNoise,
    WordDrop,
    WordDuplicate,
    WordSwap,
    load_lexicon,
)

MYTHES = Path("/usr/share/mythes/th_en_US_v2.dat")
WORDNET = Path("/usr/share/wordnet")
needs_mythes = pytest.mark.skipif(
    not MYTHES.exists(), reason="needs Debian's mythes-en-us: apt-get install mythes-en-us"
)


def _utterances() -> tuple[list[str], list[str]] | None:
    try:
        from chatterbot_corpus.corpus import DATA_DIRECTORY
    except ImportError:
        return None
    import yaml

    folder = Path(DATA_DIRECTORY) / "english"
    seen: dict[str, str] = {}
    for f in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
        for conv in data.get("conversations") or []:
            for s in conv:
                if isinstance(s, str) and s.strip() and s not in seen:
                    seen[s] = f.stem
    texts = list(seen)
    return texts, [seen[t] for t in texts]


CORPUS = _utterances()
needs_corpus = pytest.mark.skipif(
    CORPUS is None, reason="needs the chatterbot-corpus package: pip install chatterbot-corpus"
)

FALLBACK = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please send the quarterly report to the finance team before Friday.",
    "My computer keeps crashing whenever I open more than ten browser tabs.",
    "She said the movie was wonderful, but I found it rather slow and long.",
    "Robots do not need food; they only need a little electricity to survive.",
] * 40


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return CORPUS[0][:2000] if CORPUS is not None else FALLBACK


_LETTERS = re.compile(r"[^\W\d_]+")  # runs of letters: the synonym's unit


def _binomial_ok(touched: int, eligible: int, m: float, k: float = 5.0) -> bool:
    sd = math.sqrt(eligible * m * (1 - m))
    return abs(touched - m * eligible) <= k * sd + 1


def _changed_positions(a: list[str], b: list[str]) -> int:
    """Characters that differ, for same-length pairs (substitutions)."""
    total = 0
    for x, y in zip(a, b):
        assert len(x) == len(y)
        total += sum(c != d for c, d in zip(x, y))
    return total


# -- realised fraction == magnitude -------------------------------------------------------
@pytest.mark.parametrize("cls", [KeyboardTypos, CaseChanges])
@pytest.mark.parametrize("m", [0.02, 0.1, 0.5, 1.0])
def test_substitutions_touch_the_requested_fraction(cls: type, m: float, corpus: list[str]) -> None:
    p = cls()
    eligible = int(p.count_eligible(corpus).sum())
    out = p(corpus, m, 1)
    assert _binomial_ok(_changed_positions(corpus, out), eligible, m)


@pytest.mark.parametrize("m", [0.05, 0.3, 1.0])
def test_deletions_and_insertions_touch_the_requested_fraction(m: float, corpus: list[str]) -> None:
    before = sum(map(len, corpus))
    d = CharDelete()
    assert _binomial_ok(
        before - sum(map(len, d(corpus, m, 2))), int(d.count_eligible(corpus).sum()), m
    )
    i = CharInsert()
    assert _binomial_ok(
        sum(map(len, i(corpus, m, 3))) - before, int(i.count_eligible(corpus).sum()), m
    )


@pytest.mark.parametrize("m", [0.05, 0.2])
def test_swaps_move_about_the_requested_fraction(m: float, corpus: list[str]) -> None:
    p = CharSwap()
    out = p(corpus, m, 4)
    moved = _changed_positions(corpus, out)
    eligible = int(p.count_eligible(corpus).sum())
    # Starts with probability m/2 need an eligible right neighbour; runs are thinned;
    # equal letters ("ll") swap invisibly: between a half and all of m.
    assert 0.5 * m * eligible <= moved <= 1.05 * m * eligible


@pytest.mark.parametrize("m", [0.05, 0.3, 1.0])
def test_word_edits_touch_the_requested_fraction(m: float, corpus: list[str]) -> None:
    words = sum(len(s.split()) for s in corpus)
    drop, dup = WordDrop(), WordDuplicate()
    n_drop = words - sum(len(s.split()) for s in drop(corpus, m, 5))
    n_dup = sum(len(s.split()) for s in dup(corpus, m, 6)) - words
    assert _binomial_ok(n_drop, int(drop.count_eligible(corpus).sum()), m)
    assert _binomial_ok(n_dup, int(dup.count_eligible(corpus).sum()), m)


@pytest.mark.parametrize("m", [0.05, 0.3, 1.0])
def test_punctuation_noise_touches_the_requested_fraction(m: float, corpus: list[str]) -> None:
    # words with a letter or digit: none empties, so words stay aligned one for one
    text = [" ".join(w for w in s.split() if re.search(r"[^\W_]", w)) for s in corpus]
    p = PunctuationNoise()
    out = p(text, m, 10)
    pairs = [(s.split(), t.split()) for s, t in zip(text, out)]
    assert all(len(a) == len(b) for a, b in pairs)
    changed = sum(x != y for a, b in pairs for x, y in zip(a, b))
    assert _binomial_ok(changed, int(p.count_eligible(text).sum()), m)


def _space_gaps(s: str) -> list[int]:
    """Spaces between each two consecutive non-space characters."""
    return [len(g) for g in re.split(r"\S", s)[1:-1]]


@pytest.mark.parametrize("m", [0.05, 0.3, 1.0])
def test_whitespace_noise_touches_the_requested_fraction(m: float, corpus: list[str]) -> None:
    # single spaces: an edit is one gap gaining or losing one space (delete, double, split)
    text = [" ".join(s.split()) for s in corpus]
    p = WhitespaceNoise()
    out = p(text, m, 11)
    assert [s.replace(" ", "") for s in out] == [s.replace(" ", "") for s in text]
    edits = sum(
        sum(abs(a - b) for a, b in zip(_space_gaps(s), _space_gaps(t))) for s, t in zip(text, out)
    )
    assert _binomial_ok(edits, int(p.count_eligible(text).sum()), m)


def test_word_swap_moves_words_and_keeps_them(corpus: list[str]) -> None:
    out = WordSwap()(corpus, 0.4, 7)
    assert [sorted(s.split()) for s in out] == [sorted(s.split()) for s in corpus]
    moved = sum(sum(a != b for a, b in zip(s.split(), t.split())) for s, t in zip(corpus, out))
    eligible = int(WordSwap().count_eligible(corpus).sum())
    assert 0.15 * eligible <= moved <= 0.42 * eligible


@pytest.mark.parametrize("m", [0.1, 0.5])
def test_ocr_errors_touch_the_requested_fraction(m: float, corpus: list[str]) -> None:
    # Substitutions only where neither expansion nor contraction applies.
    text = ["".join(ch for ch in s if ch not in "mwdWrcv") for s in corpus]
    p = OcrErrors()
    out = p(text, m, 8)
    assert _binomial_ok(_changed_positions(text, out), int(p.count_eligible(text).sum()), m)


def test_ocr_confusions_are_the_documented_ones() -> None:
    out = OcrErrors(protect_numbers=False)(["rn cl vv m w d 0 O l 1 S 5 B 8"], 1.0, 0)[0]
    assert out.split()[:6] == ["m", "d", "w", "rn", "vv", "cl"]
    assert all(
        a in b for a, b in zip(out.split()[6:], ["Oo", "0Q", "1I", "lI", "5", "S", "8", "B"])
    )


@needs_mythes
@pytest.mark.parametrize("m", [0.1, 0.5, 1.0])
def test_synonyms_touch_the_requested_fraction(m: float, corpus: list[str]) -> None:
    p = SynonymSubstitution()
    out = p(corpus, m, 9)
    before, after = [_LETTERS.findall(s) for s in corpus], [_LETTERS.findall(s) for s in out]
    assert [len(w) for w in before] == [len(w) for w in after]  # one word for one word
    changed = sum(a != b for w, v in zip(before, after) for a, b in zip(w, v))
    assert _binomial_ok(changed, int(p.count_eligible(corpus).sum()), m)


# -- common random numbers: edits nest across magnitudes -----------------------------------
@pytest.mark.parametrize("cls", [KeyboardTypos, CaseChanges, OcrErrors])
def test_substitutions_nest_across_magnitudes(cls: type, corpus: list[str]) -> None:
    text = ["".join(ch for ch in s if ch not in "mwdWrcv") for s in corpus]  # no splices
    p = cls()
    lo, hi = p(text, 0.1, 11), p(text, 0.3, 11)
    for s, a, b in zip(text, lo, hi):
        for c, x, y in zip(s, a, b):
            if x != c:
                assert y == x  # touched at 0.1 -> touched at 0.3, the same way


def test_deletions_nest_across_magnitudes(corpus: list[str]) -> None:
    p = CharDelete()
    assert all(len(a) >= len(b) for a, b in zip(p(corpus, 0.1, 12), p(corpus, 0.3, 12)))
    drop = WordDrop()
    for lo, hi in zip(drop(corpus, 0.1, 13), drop(corpus, 0.3, 13)):
        assert set(hi.split()) <= set(lo.split())


# -- protection ---------------------------------------------------------------------------
PROTECTED = "Order 66 of ACME costs $3.50 in New York on 2024-01-02, call 555-0100."


@pytest.mark.parametrize("name", perturbations.list("text"))
def test_numbers_and_entities_are_never_edited(name: str) -> None:
    if name == "synonym_substitution" and not MYTHES.exists():
        pytest.skip("needs mythes-en-us")
    p = perturbations.get(name, protect=["New York", "ACME"])
    for seed in range(5):
        out = p([PROTECTED] * 4, 1.0, seed)
        for s in out:
            for keep in ("66", "ACME", "$3.50", "New York", "2024-01-02,", "555-0100."):
                assert keep in s, (name, s)


def test_protect_numbers_can_be_turned_off() -> None:
    out = OcrErrors(protect_numbers=False)(["call 0101"], 1.0, 0)[0]
    assert "0101" not in out


# -- containers, identity, determinism, bad input --------------------------------------------
@pytest.mark.parametrize(
    "batch",
    [
        ["a b", "c d e"],
        ("a b", "c d e"),
        np.asarray(["a b", "c d e"]),
        np.asarray(["a b", "c d e"], dtype=object),
        pd.Series(["a b", "c d e"], index=[7, 9], name="text"),
    ],
    ids=["list", "tuple", "str-array", "object-array", "series"],
)
def test_the_container_comes_back(batch: Any) -> None:
    out = WordDuplicate()(batch, 1.0, 0)
    assert type(out) is type(batch)
    assert list(out) == ["a a b b", "c c d d e e"]
    if isinstance(batch, pd.Series):
        assert list(out.index) == [7, 9] and out.name == "text"
    assert list(batch) == ["a b", "c d e"]  # the caller's batch is untouched


def test_same_seed_same_text_other_seed_other_text(corpus: list[str]) -> None:
    p = KeyboardTypos()
    assert p(corpus, 0.2, 3) == p(corpus, 0.2, np.random.default_rng(3))
    assert p(corpus, 0.2, 3) != p(corpus, 0.2, 4)
    assert p(corpus, 0.0, 3) == corpus


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("just one string", "single str"),
        (["ok", 3, "no"], "item 1 is a int"),
        (["ok", None], "item 1 is a NoneType"),
        (np.asarray([["a", "b"]]), "1-D batch"),
        ({"a": 1}, "Got dict"),
    ],
)
def test_bad_input_is_refused_in_one_line(bad: Any, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        KeyboardTypos()(bad, 0.1, 0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"protect": "New York"}, "list of non-empty strings"),
        ({"protect": [""]}, "list of non-empty strings"),
        ({"protect_numbers": "yes"}, "protect_numbers"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        perturbations.get("keyboard_typos", **params)


def test_magnitude_above_one_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        KeyboardTypos()(["abc"], 1.5, 0)


def test_unicode_and_control_characters_survive() -> None:
    text = ["naïve café 東京 🙂 a\x00b \ud800 end"]
    for name in perturbations.list("text"):
        if name == "synonym_substitution" and not MYTHES.exists():
            continue
        out = perturbations.get(name)(text, 1.0, 0)
        assert isinstance(out[0], str)
        if name != "word_drop":  # tokens may all go
            assert "\ud800" in out[0]  # a lone surrogate is carried through, never edited
            assert "🙂" in out[0]  # above the BMP: never edited


# -- pipelines and the engine's block joins -----------------------------------------------
def test_combine_gives_each_step_its_own_stream(corpus: list[str]) -> None:
    a, b = CaseChanges(), WordDrop()
    root, repeat, block = 42, 0, 0
    arr = np.asarray(corpus[:50], dtype=object)
    pair = Combine([a, b])
    params = pair.sample_block(arr, root=root, repeat=repeat, block=block)
    alone_a = a.sample_block(arr, root=root, repeat=repeat, block=block)
    assert all(np.array_equal(x, y) for x, y in zip(params[0], alone_a))
    both = pair.apply(arr, params, 0.3)
    by_hand = b.apply(a.apply(arr, alone_a, 0.3), params[1], 0.3)
    assert both.tolist() == by_hand.tolist()


def test_a_lengthening_step_then_a_char_step(corpus: list[str]) -> None:
    """Draws made on the original text cover the lengthened text (cyclically)."""
    out = Compose(["char_insert", "keyboard_typos", "word_duplicate", "char_swap"])(
        corpus[:100], 0.5, 0
    )
    assert len(out) == 100 and all(isinstance(s, str) for s in out)


@pytest.mark.parametrize("name", ["keyboard_typos", "ocr_errors", "word_drop", "word_swap"])
def test_blocks_join_as_the_engine_joins_them(name: str, corpus: list[str]) -> None:
    """rowwise: draws of consecutive blocks, concatenated, perturb like the blocks apart."""
    p = perturbations.get(name)
    arr = np.asarray(corpus[:90], dtype=object)
    d1 = p.sample_block(arr[:40], root=1, repeat=0, block=0)
    d2 = p.sample_block(arr[40:], root=1, repeat=0, block=1)
    joined = tuple(np.concatenate(parts) for parts in zip(d1, d2))
    apart = p.apply(arr[:40], d1, 0.4).tolist() + p.apply(arr[40:], d2, 0.4).tolist()
    assert p.apply(arr, joined, 0.4).tolist() == apart


def test_params_for_another_batch_are_refused() -> None:
    p = KeyboardTypos()
    params = p.sample(np.asarray(["a", "b"], dtype=object), np.random.default_rng(0))
    with pytest.raises(ParameterError, match="drawn for a batch of 2 strings"):
        p.apply(np.asarray(["a"], dtype=object), params, 0.5)


# -- the thesaurus ------------------------------------------------------------------------
def test_a_missing_thesaurus_names_the_package(tmp_path: Path) -> None:
    p = SynonymSubstitution(lexicon=str(tmp_path / "nothing.dat"))
    with pytest.raises(MissingExtraError, match="apt-get install mythes-en-us"):
        p(["a big house"], 0.5, 0)


def test_no_thesaurus_at_the_default_places_names_the_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import perturbkit.perturbations.text as text

    monkeypatch.setattr(text, "_DEFAULT_LEXICONS", (tmp_path / "no.dat", tmp_path / "none"))
    with pytest.raises(MissingExtraError) as e:
        SynonymSubstitution()(["a big house"], 0.5, 0)
    assert str(e.value) == (
        "SynonymSubstitution needs an offline English thesaurus: apt-get install "
        "mythes-en-us (or wordnet-base), or pass lexicon='/path/to/th_en_US_v2.dat'."
    )


def test_a_small_mythes_file(tmp_path: Path) -> None:
    dat = tmp_path / "th_test.dat"
    dat.write_text(
        "UTF-8\nbig|2\n(adj)|large|great (similar term)|small (antonym)\n(adj)|heavy\n"
        "house|1\n(noun)|home|dwelling (generic term)|firm\n",
        encoding="utf-8",
    )
    lex = load_lexicon(dat)
    assert lex == {"big": ("large",), "house": ("home", "firm")}
    out = SynonymSubstitution(lexicon=str(dat))(["A Big HOUSE, a big house."], 1.0, 0)[0]
    assert out.startswith("A Large ") and out.split()[2] in ("HOME,", "FIRM,")
    assert "large" in out


@pytest.mark.skipif(not (WORDNET / "data.noun").exists(), reason="needs wordnet-base")
def test_wordnet_folder_works_too() -> None:
    lex = load_lexicon(WORDNET)
    assert "large" in lex["big"] and "film" in lex["movie"]


@needs_mythes
def test_function_words_are_never_replaced() -> None:
    out = SynonymSubstitution()(["I am in the house and it is at the top"], 1.0, 0)[0]
    kept = out.split()
    for w in ("I", "am", "in", "the", "and", "it", "is", "at"):
        assert w in kept


# -- a real classifier on a real corpus ----------------------------------------------------
@pytest.fixture(scope="module")
def topic_model() -> tuple[Any, list[str], np.ndarray]:
    if CORPUS is None:
        pytest.skip("needs the chatterbot-corpus package: pip install chatterbot-corpus")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    texts, topics = CORPUS
    keep = {"ai", "computers", "emotion", "food", "greetings", "money", "science", "sports"}
    pairs = [(t, c) for t, c in zip(texts, topics) if c in keep]
    X, y = [t for t, _ in pairs], [c for _, c in pairs]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    pipe = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=10.0, solver="newton-cg"),
    )
    with threadpool_limits(1):  # a small problem: BLAS threads only contend
        pipe.fit(X_tr, y_tr)
    classes = list(pipe.classes_)
    return pipe, X_te, np.asarray([classes.index(c) for c in y_te])


def test_topic_classifier_degrades_with_typos(topic_model: Any) -> None:
    pipe, X_te, y_te = topic_model
    model = pk.wrap(lambda batch: pipe.predict_proba(list(batch)), task="classification")
    clean = model(X_te).argmax(axis=1)
    assert (clean == y_te).mean() > 0.6  # a real classifier, well above chance (1/8)
    accs = []
    for m in (0.0, 0.1, 0.3, 0.6):
        P = model(KeyboardTypos()(X_te, m, 0))
        accs.append(float((P.argmax(axis=1) == y_te).mean()))
    assert accs[0] == pytest.approx((clean == y_te).mean())
    assert accs[0] > accs[2] > accs[3]  # common random numbers: a clean, falling curve
    flips = (model(WordSwap()(X_te, 0.5, 0)).argmax(axis=1) != clean).mean()
    assert flips < 0.25  # bag of character n-grams: word order barely matters


def test_topic_classifier_through_every_perturbation(topic_model: Any) -> None:
    pipe, X_te, _ = topic_model
    for name in perturbations.list("text"):
        if name == "synonym_substitution" and not MYTHES.exists():
            continue
        out = perturbations.get(name)(X_te, 0.3, 1)
        P = pipe.predict_proba(out)
        assert P.shape == (len(X_te), len(pipe.classes_)), name


def test_text_through_sweep_and_interactions(topic_model: Any) -> None:
    """The engine takes text batches; a lowercasing model cannot see case changes."""
    from perturbkit.analysis.interactions import interactions

    pipe, X_te, y_te = topic_model
    model = pk.wrap(lambda batch: pipe.predict_proba(list(batch)), task="classification")
    result = pk.sweep(
        model,
        X_te,
        y_te,
        perturbations=["keyboard_typos", "word_drop"],
        magnitudes=[0, 0.1, 0.4],
        repeats=2,
        seed=0,
        progress=False,
    )
    s = result.summary()
    acc = s[s["metric"] == "accuracy"].set_index(["perturbation", "magnitude"])["mean"]
    assert (
        acc[("keyboard_typos", 0.0)] > acc[("keyboard_typos", 0.1)] > acc[("keyboard_typos", 0.4)]
    )
    table = interactions(
        model,
        X_te,
        y_te,
        perturbations=["keyboard_typos", "case_changes", "word_drop"],
        magnitude=0.3,
        repeats=3,
        seed=0,
    ).set_index("label")
    # TfidfVectorizer lowercases: case changes alone change nothing, and after
    # keyboard typos (which keep case) they change nothing either, draw for draw.
    assert table.loc["case_changes", "delta"] == 0
    assert table.loc["keyboard_typos + case_changes", "interaction"] == 0
    assert table.loc["keyboard_typos", "delta"] > 0.05


def test_number_protection_is_the_same_sparse_and_dense() -> None:
    from perturbkit.perturbations.text import _Flat, _in_number, _number_mask

    gen = np.random.default_rng(0)
    alphabet = [*"ab1 \t.-", "\n", "x9"]
    strings = ["".join(gen.choice(alphabet, gen.integers(0, 30))) for _ in range(300)]
    flat = _Flat.encode(strings)
    dense = _number_mask(flat)
    np.testing.assert_array_equal(_in_number(flat, np.arange(flat.size)), dense)
    expect = [[any(ch.isdigit() for ch in tok) for tok in s.split() for _ in tok] for s in strings]
    got = [
        [bool(v) for v, ch in zip(dense[a:b], s) if not ch.isspace()]
        for s, a, b in zip(strings, flat.starts, flat.ends)
    ]
    assert got == expect


def test_docs_snippets_run() -> None:
    """Every python block of docs/text_audio.md runs, in order, in one namespace."""
    page = Path(__file__).resolve().parents[2] / "docs" / "text_audio.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5
    ns: dict[str, Any] = {}
    for i, code in enumerate(blocks):
        if "lexicon" in code and not MYTHES.exists():
            continue
        exec(compile(code, f"docs/text_audio.md[block {i}]", "exec"), ns)
