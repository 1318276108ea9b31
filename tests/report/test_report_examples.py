"""Examples before and after, and interactions, in the HTML report.

Real sweeps on real data: images (scikit-learn's digits, a logistic
regression), text (chatterbot-corpus, a TF-IDF character n-gram logistic
regression), audio (synthesised tones, a logistic regression on band
energies) and tabular (breast cancer). Each run's examples section must be
present, escaped, self-contained and small; the examples themselves must be
the run's perturbations at the run's magnitudes, with shared draws across
magnitudes.
"""

from __future__ import annotations

import base64
import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import perturbkit as pk
from perturbkit import ParameterError, perturbations
from perturbkit.analysis.interactions import interactions
from perturbkit.report import Example, perturbation_examples, render_html, write_report
from perturbkit.report import examples as ex_mod
from perturbkit.report._common import fmt_value

EVIL = "<script>alert(1)</script>"
SR = 8000


# -- helpers ------------------------------------------------------------------------------------
class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.imgs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.attrs.extend(attrs)
        self.ids.extend(v for k, v in attrs if k == "id" and v)
        if tag == "img":
            self.imgs.append(dict(attrs))


def _parse(doc: str) -> _Collect:
    p = _Collect()
    p.feed(doc)
    p.close()
    return p


def assert_self_contained(doc: str) -> None:
    """No script, no link, no URL: images only as inline PNG data URIs."""
    low = doc.lower()
    for bad in ("http://", "https://", "//cdn", "<script", "<link", "<iframe", "@import"):
        assert bad not in low, bad
    assert not re.search(r"url\((?!#)", low), "only in-document url(#id) references"
    parsed = _parse(doc)
    assert not [k for k, _ in parsed.attrs if k == "srcset" or k.startswith("on")]
    for k, v in parsed.attrs:
        if k == "src":
            assert v is not None and v.startswith("data:image/png;base64,"), v[:40]
    assert len(parsed.ids) == len(set(parsed.ids)), "duplicate ids"


def _png_sizes(doc: str) -> list[int]:
    return [
        len(base64.b64decode(m)) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', doc)
    ]


def _section(doc: str, sid: str) -> str:
    """The HTML of one <section id=sid>."""
    start = doc.index(f'id="{sid}"')
    return doc[start : doc.index("</section>", start)]


# -- real runs ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_run(digits, digits_model):
    pytest.importorskip("torch")
    X, y = digits
    images = (X[:120] / 16.0).reshape(-1, 1, 8, 8)
    model = pk.wrap(
        lambda b: digits_model.predict_proba(np.asarray(b).reshape(len(b), -1)),
        task="classification",
    )
    result = pk.sweep(
        model,
        images,
        y[:120],
        perturbations=["gaussian_blur", "contrast", "image_gaussian_noise"],
        magnitudes=[0, 1, 2, 3, 5],
        repeats=1,
        seed=0,
        progress=False,
        name="digits",
    )
    return result, images


@pytest.fixture(scope="module")
def text_run():
    pytest.importorskip("chatterbot_corpus")
    import yaml
    from chatterbot_corpus.corpus import DATA_DIRECTORY
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = [], []
    for topic in ("food", "money", "sports", "greetings"):
        data = yaml.safe_load((Path(DATA_DIRECTORY) / "english" / f"{topic}.yml").read_text())
        for conv in data.get("conversations") or []:
            for s in conv:
                if isinstance(s, str) and s.strip() and s not in texts:
                    texts.append(s)
                    labels.append(topic)
    texts.append(f"I said {EVIL} & left // quickly")
    labels.append("greetings")
    pipe = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)),
        LogisticRegression(max_iter=2000),
    ).fit(texts, labels)
    classes = list(pipe.classes_)
    y = np.asarray([classes.index(c) for c in labels])
    model = pk.wrap(lambda b: pipe.predict_proba(list(b)), task="classification")
    result = pk.sweep(
        model,
        texts,
        y,
        perturbations=["keyboard_typos", "word_drop", "case_changes"],
        magnitudes=[0, 0.1, 0.2, 0.4],
        repeats=1,
        seed=0,
        progress=False,
        name="chatterbot topics",
    )
    return result, texts


def _band_energies(batch) -> np.ndarray:
    x = np.asarray(batch, np.float64)
    spec = np.abs(np.fft.rfft(x, axis=1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[1], 1 / SR)
    edges = np.geomspace(60, SR / 2, 17)
    bands = np.stack(
        [spec[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in itertools.pairwise(edges)], 1
    )
    logb = np.log(bands + 1e-10)
    return logb - logb.mean(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def audio_run():
    from sklearn.linear_model import LogisticRegression

    gen = np.random.default_rng(0)
    n = 64
    y = gen.integers(0, 4, n)
    t = np.arange(SR // 2) / SR
    f0 = 200.0 * 2 ** (y / 2)[:, None]
    clips = sum(np.sin(2 * np.pi * k * f0 * t + gen.uniform(0, 6, (n, 1))) / k for k in (1, 2))
    clips = (0.5 * clips / np.abs(clips).max(axis=1, keepdims=True)).astype(np.float32)
    clf = LogisticRegression(max_iter=2000).fit(_band_energies(clips), y)
    model = pk.wrap(lambda b: clf.predict_proba(_band_energies(b)), task="classification")
    result = pk.sweep(
        model,
        clips,
        y,
        perturbations=["white_noise", {"name": "reverb", "params": {"sample_rate": SR}}],
        magnitudes=[0, 0.1, 0.3, 1.0],
        repeats=1,
        seed=0,
        progress=False,
        name="tones",
    )
    return result, clips


@pytest.fixture(scope="module")
def all_runs_doc(image_run, text_run, audio_run, cls_result, breast_cancer):
    runs = [image_run, text_run, audio_run, (cls_result, breast_cancer[0])]
    examples = [
        e
        for r, X in runs
        for e in perturbation_examples(
            r, X, n_rows=2, sample_rate=SR if r.meta["name"] == "tones" else None
        )
    ]
    return render_html([r for r, _ in runs], examples=examples)


# -- making examples ------------------------------------------------------------------------------
def test_examples_are_the_runs_perturbations_at_its_magnitudes(cls_result, breast_cancer):
    X, _ = breast_cancer
    exs = perturbation_examples(cls_result, X, n_rows=3)
    assert [e.label for e in exs] == ["gaussian_noise", "sensor_drift", "outliers"]
    for e in exs:
        assert e.modality == "tabular" and e.run_id == cls_result.meta["run_id"]
        assert e.magnitudes == (0.1, 0.3, 1.0)  # the run's grid, without 0
        assert e.before.shape == (3, 30) and len(e.after) == 3
        np.testing.assert_array_equal(e.before, X[list(e.rows)])
    # n_magnitudes spreads over the grid and keeps the largest
    two = perturbation_examples(cls_result, X, n_magnitudes=2)
    assert {e.magnitudes for e in two} == {(0.1, 1.0)}
    # magnitudes given by label
    given = perturbation_examples(cls_result, X, magnitudes={"outliers": [0.05]}, rows=[0, 5])
    assert given[2].magnitudes == (0.05,) and given[0].magnitudes == (0.1, 0.3, 1.0)
    assert given[0].rows == (0, 5)


def test_examples_share_draws_across_magnitudes_and_follow_the_seed(cls_result, breast_cancer):
    """Gaussian noise in feature-std units: (x' − x) / (m · std) is the same z at every m."""
    X, _ = breast_cancer
    e = perturbation_examples(cls_result, X, rows=[1, 2, 3], seed=7)[0]
    std = X.std(axis=0)
    z = [(a - e.before) / (m * std) for m, a in zip(e.magnitudes, e.after)]
    np.testing.assert_allclose(z[0], z[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(z[0], z[2], rtol=1e-9, atol=1e-9)
    assert 0.5 < float(np.std(z[0])) < 1.6  # standard normal draws, 90 of them
    again = perturbation_examples(cls_result, X, rows=[1, 2, 3], seed=7)[0]
    other = perturbation_examples(cls_result, X, rows=[1, 2, 3], seed=8)[0]
    np.testing.assert_array_equal(again.after[0], e.after[0])
    assert not np.array_equal(other.after[0], e.after[0])
    # the row choice is seeded too
    assert perturbation_examples(cls_result, X, seed=3)[0].rows == (
        perturbation_examples(cls_result, X, seed=3)[0].rows
    )


def test_deterministic_image_examples_equal_the_perturbation(image_run):
    result, images = image_run
    exs = perturbation_examples(result, images, rows=[4, 9])
    blur = exs[0]
    assert blur.label == "gaussian_blur" and blur.modality == "image"
    assert blur.magnitudes == (1.0, 3.0, 5.0)
    direct = perturbations.get("gaussian_blur")(images[[4, 9]], 3.0, 0)
    np.testing.assert_array_equal(blur.after[1], direct)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_rows": 0}, "'n_rows' parameter of perturbation_examples must be an int >= 1"),
        ({"rows": [0, 10_000]}, r"'rows' parameter .* positions in \[0, 568\]. Got 10000"),
        ({"seed": -1}, "'seed' parameter of perturbation_examples must be an int >= 0"),
        ({"magnitudes": "big"}, "'magnitudes' parameter of perturbation_examples"),
    ],
)
def test_bad_arguments_fail_in_one_line(cls_result, breast_cancer, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        perturbation_examples(cls_result, breast_cancer[0], **kwargs)


def test_text_diff_marks_changes_and_escapes():
    marked, edits = ex_mod.diff_html("a <b> c", "a <B> cc")
    assert marked == "a &lt;<del>b</del><ins>B</ins>&gt; c<ins>c</ins>"
    assert edits == 2
    cut, _ = ex_mod.diff_html("x" * 50, "x" * 50, limit=10)
    assert cut.startswith("x" * 10) and "…" in cut and "x" * 11 not in cut


# -- the report -----------------------------------------------------------------------------------
def test_every_modality_has_its_examples_section(all_runs_doc):
    doc = all_runs_doc
    assert_self_contained(doc)
    ids = set(_parse(doc).ids)
    for i in (1, 2, 3, 4):
        assert f"run{i}-examples" in ids
        assert f'href="#run{i}-examples"' in doc
    # images: (clean + 3 magnitudes) x 2 rows x 3 perturbations thumbnails
    img = _section(doc, "run1-examples")
    assert img.count('<img class="ex-thumb"') == 4 * 2 * 3
    assert "gaussian_blur" in img and 'class="num">5<' in img
    # text: changes marked
    txt = _section(doc, "run2-examples")
    assert "<ins>" in txt and "<del>" in txt and "keyboard_typos" in txt
    # audio: one waveform + spectrogram figure per perturbation
    aud = _section(doc, "run3-examples")
    assert aud.count('<img class="ex-audio"') == 2 and "at 8 kHz" in aud
    # tabular: changed cells highlighted
    tab = _section(doc, "run4-examples")
    assert 'class="num chg"' in tab and "outliers" in tab
    # the examples come after "What was tested" and before the curves
    assert doc.index('id="run4-overview"') < doc.index('id="run4-examples"')
    assert doc.index('id="run4-examples"') < doc.index('id="run4-curves"')


def test_text_examples_are_escaped(text_run):
    result, texts = text_run
    exs = perturbation_examples(result, texts, rows=[len(texts) - 1, 0])
    doc = render_html(result, examples=exs)
    assert_self_contained(doc)
    sec = _section(doc, "run1-examples")
    assert "I said &lt;script&gt;alert(1)&lt;/script&gt; &amp; left &#47;&#47; quickly" in sec
    assert "<script" not in doc.lower()


def test_examples_size_is_bounded(cls_result):
    """Incompressible 96x96 noise images: the embedded PNGs stop at the per-run cap."""
    gen = np.random.default_rng(0)
    clean = gen.random((3, 3, 96, 96))
    exs = [
        Example(
            label=f"noise {i} {EVIL}",
            perturbation="image_gaussian_noise@1",
            modality="image",
            unit="severity",
            magnitudes=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0),
            rows=(0, 1, 2),
            before=clean,
            after=tuple(gen.random((3, 3, 96, 96)) for _ in range(7)),
            run_id=cls_result.meta["run_id"],
        )
        for i in range(12)
    ]
    doc = render_html(cls_result, examples=exs)
    assert_self_contained(doc)
    sec = _section(doc, "run1-examples")
    # at most MAX_MAGNITUDES magnitudes and MAX_ROWS rows per perturbation are shown
    first = sec[: sec.index("</table>")]
    assert first.count('<img class="ex-thumb"') == 3 * (1 + ex_mod.MAX_MAGNITUDES)
    assert sum(4 * ((n + 2) // 3) for n in _png_sizes(doc)) <= ex_mod.MAX_EMBED_BYTES
    assert "Not shown, to keep the report under 1.5 MB" in sec
    assert "noise 11 &lt;script&gt;" in sec  # the skipped ones are named, escaped
    assert len(doc) < 2.5e6


def test_examples_by_position_or_run_id_and_bad_input(cls_result, reg_result, breast_cancer):
    X, _ = breast_cancer
    exs = perturbation_examples(cls_result, X, n_rows=1)
    for given in ({0: exs}, {cls_result.meta["run_id"]: exs}, exs):
        doc = render_html([cls_result, reg_result], examples=given)
        assert 'id="run1-examples"' in doc and 'id="run2-examples"' not in doc
    with pytest.raises(ParameterError, match="names run 5, which is not a sweep of the report"):
        render_html([cls_result, reg_result], examples={5: exs})
    with pytest.raises(ParameterError, match="must hold Example objects"):
        render_html(cls_result, examples=[X])
    with pytest.raises(ParameterError, match="'examples' parameter of write_report must be"):
        render_html(cls_result, examples="examples")
    with pytest.raises(ParameterError, match="holds an example of run"):
        render_html([reg_result, reg_result], examples=exs)


# -- interactions ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def interaction_table(cancer_model, breast_cancer):
    X, y = breast_cancer
    return interactions(
        cancer_model,
        X,
        y,
        perturbations=["gaussian_noise", "outliers"],
        magnitude=0.5,
        repeats=3,
        seed=0,
    )


def test_interactions_section(cls_result, interaction_table, tmp_path):
    t = interaction_table
    path = write_report(cls_result, tmp_path / "r.html", interactions=t)
    doc = path.read_text(encoding="utf-8")
    assert_self_contained(doc)
    ids = set(_parse(doc).ids)
    assert {"interactions", "interactions-1", "interactions-method"} <= ids
    assert 'href="#interactions-1"' in doc
    sec = _section(doc, "interactions-1")
    assert '<svg role="img" aria-label="interactions-1-heatmap"' in sec
    pair = t[t["kind"] == "pair"].iloc[0]
    assert "<strong>gaussian_noise</strong> + <strong>outliers</strong>" in sec
    for col in ("delta", "additive", "interaction", "interaction_low", "interaction_high"):
        assert fmt_value(float(pair[col]), "accuracy_drop", points=True) in sec, col
    # the interaction is the pair's change minus the sum of the singles' changes
    singles = t[t["kind"] == "single"]
    assert pair["additive"] == pytest.approx(singles["delta"].sum())
    assert pair["interaction"] == pytest.approx(pair["delta"] - pair["additive"])
    for head in ("Δ pair", "Sum of singles", "Interaction", "Δ alone"):
        assert f"<th>{head}</th>" in sec


def test_several_interaction_tables_and_bad_input(cls_result, interaction_table):
    doc = render_html(cls_result, interactions=[interaction_table, interaction_table])
    ids = set(_parse(doc).ids)
    assert {"interactions-1", "interactions-2"} <= ids
    assert doc.count('aria-label="interactions-2-heatmap"') == 1
    with pytest.raises(ParameterError, match="'interactions' parameter of write_report"):
        render_html(cls_result, interactions=cls_result.table)
    with pytest.raises(ParameterError, match="'interactions' parameter of write_report"):
        render_html(cls_result, interactions="table")
