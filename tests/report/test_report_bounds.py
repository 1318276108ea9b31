"""The report's "Robustness bounds" section: curves, tables, AUC, radius; self-contained."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

import perturbkit as pk
from perturbkit.analysis.bounds_store import certification_summary, save_curve
from perturbkit.report import render_html, write_report

EVIL = "<script>alert(1)</script>"
SECTIONS = ["curves", "summary", "tables", "method", "reproducibility"]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.attrs.extend(attrs)
        self.ids.extend(v for k, v in attrs if k == "id" and v)


def _ids(doc: str) -> list[str]:
    p = _Collect()
    p.feed(doc)
    p.close()
    return p.ids


def assert_self_contained(doc: str) -> None:
    low = doc.lower()
    for bad in ("http://", "https://", "//cdn", "<script", "<link", "<iframe", "@import"):
        assert bad not in low, bad
    assert not re.search(r"url\((?!#)", low), "only in-document url(#id) references"
    p = _Collect()
    p.feed(doc)
    assert not [k for k, _ in p.attrs if k in ("src", "srcset") or k.startswith("on")]
    assert len(p.ids) == len(set(p.ids)), "duplicate ids"


@pytest.fixture(scope="module")
def reg_curve(diabetes_linear, diabetes):
    X, y = diabetes
    return pk.robustness_curve(
        diabetes_linear, X, y, levels=[0, 0.1, 0.5, 1.0, 2.0], n_draws=16, seed=0, label="ridge"
    )


@pytest.fixture(scope="module")
def shrunk_curve(diabetes_linear, diabetes):
    X, y = diabetes
    return pk.robustness_curve(
        lambda A: 0.5 * diabetes_linear.predict(A),
        X,
        y,
        levels=[0, 0.1, 0.5, 1.0, 2.0],
        n_draws=16,
        seed=0,
        label="shrunk ridge",
    )


@pytest.fixture(scope="module")
def cls_curve(cancer_model, breast_cancer):
    X, y = breast_cancer
    return pk.robustness_curve(
        cancer_model, X, y, levels=[0, 0.2, 1.0], n_draws=8, seed=1, label="logreg"
    )


def test_curves_alone(reg_curve, shrunk_curve, tmp_path):
    path = write_report([reg_curve, shrunk_curve], tmp_path / "b.html")
    doc = path.read_text(encoding="utf-8")
    assert_self_contained(doc)
    ids = set(_ids(doc))
    assert "bounds" in ids
    for s in SECTIONS:
        assert f"bounds-{s}" in ids and f'href="#bounds-{s}"' in doc
    assert "bounds-certification" not in ids
    assert doc.count("<svg") == 1  # one figure compares the curves
    assert "MSE / Var(y)" in doc and "stroke-dasharray" in doc  # normalised; dashed bounds
    assert "<title>Robustness report</title>" in doc and "2 robustness curves" in doc
    for c in (reg_curve, shrunk_curve):
        assert f"<strong>{c.label}</strong>" in doc
        # AUC (mean height of the normalised bound) and every level's bound, as printed
        assert f'<span class="num">{c.auc(normalize=True):.4g}</span>' in doc
        for v in c.table["mse_upper"]:
            assert f'<span class="num">{v:.4g}</span>' in doc
        assert f"seed={c.meta['root_seed']}" in doc


def test_robustness_radius_follows_the_tolerance(reg_curve, shrunk_curve):
    doc = render_html([reg_curve, shrunk_curve], bounds_tolerance=0.6)
    for c in (reg_curve, shrunk_curve):
        r = c.radius(0.6)
        levels = c.levels
        if np.isnan(r):
            assert f"exceeded at ε = {levels.min():g}" in doc
        elif r >= levels.max():
            assert f"≥ {r:g}" in doc
        else:
            assert f'<span class="num">{r:g}</span>' in doc
    assert "Radius: normalised bound ≤ 0.6" in doc
    one = render_html(reg_curve)  # radius at the default tolerance, 1 × Var(y)
    assert "Radius: normalised bound ≤ 1" in one and "<title>Robustness bounds: ridge" in one
    with pytest.raises(pk.ParameterError, match="'bounds_tolerance' parameter"):
        render_html(reg_curve, bounds_tolerance=0)


def test_sweep_curve_and_stored_bounds_run_in_one_report(
    reg_result, cls_curve, cancer_model, breast_cancer, tmp_path
):
    X, y = breast_cancer
    cert = certification_summary(
        [pk.certify(cancer_model, X[:40], sigma=s, n0=10, n=100, seed=0) for s in (5.0, 10.0)],
        y[:40],
    )
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    run_id = save_curve(cls_curve, url, certification=cert, meta={"command": "perturbkit x"})
    stored = pk.load_run(run_id, url)  # what `perturbkit report RUN` passes
    doc = render_html([reg_result, stored], command="perturbkit run exp.yaml")
    assert_self_contained(doc)
    ids = set(_ids(doc))
    assert {"run1", "run1-curves", "bounds", "bounds-certification"} <= ids
    assert reg_result.run_id in doc and run_id in doc
    assert "Certified robustness" in doc and "certified at r = 0.5σ" in doc
    assert doc.count("<svg") == 3 + 2  # sweep: 2 curves, heatmap; bounds: Brier, error rate
    assert "error rate" in doc and "perturbkit x" in doc
    assert "1 run · 1 robustness curve" in doc


def test_label_free_curve_uses_the_deviation(diabetes_linear, diabetes):
    X, _ = diabetes
    curve = pk.robustness_curve(diabetes_linear, X, levels=[0, 0.5], n_draws=8, seed=2)
    doc = render_html(curve)
    assert_self_contained(doc)
    assert "deviation bound" in doc and "MSE bound" not in doc
    assert "mean squared output deviation / Var(f(x))" in doc


def test_user_strings_are_escaped(reg_curve):
    evil = pk.RobustnessCurve(
        reg_curve.table,
        {**reg_curve.meta, "model": "m<img src=x onerror=alert(2)> //cdn.evil"},
        EVIL,
    )
    doc = render_html([evil, evil])
    assert EVIL not in doc and "&lt;script&gt;" in doc and "<img" not in doc
    assert_self_contained(doc)
    assert f"{EVIL} (2)".replace("<", "&lt;").replace(">", "&gt;") in doc  # names kept apart


def test_bad_items_still_fail(tmp_path, reg_curve):
    with pytest.raises(pk.ParameterError, match="must be a SweepResult"):
        write_report([reg_curve, "not a result"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
