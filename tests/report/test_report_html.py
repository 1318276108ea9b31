"""The HTML report: self-contained, every section present, user data escaped, small."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from perturbkit import ParameterError
from perturbkit.report import render_html, write_report

EVIL = "<script>alert(1)</script>"  # as in conftest.evil_result

RUN_SECTIONS = [
    "summary",
    "baseline",
    "overview",
    "curves",
    "heatmap",
    "thresholds",
    "reproducibility",
]
CLASS_SECTIONS = ["per-class", "error-modes"]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self.ids.extend(v for k, v in attrs if k == "id" and v)


def _parse(doc: str) -> _Collect:
    p = _Collect()
    p.feed(doc)
    p.close()
    return p


def assert_self_contained(doc: str) -> None:
    low = doc.lower()
    for bad in ("http://", "https://", "//cdn", "<script", "<link", "<iframe", "@import"):
        assert bad not in low, bad
    assert not re.search(r"url\((?!#)", low), "only in-document url(#id) references"
    parsed = _parse(doc)
    assert not [k for k, _ in parsed.attrs if k in ("src", "srcset") or k.startswith("on")]
    assert len(parsed.ids) == len(set(parsed.ids)), "duplicate ids (inline SVGs must not collide)"


@pytest.fixture(scope="module")
def two_run_report(cls_result, reg_result, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    out = write_report([cls_result, reg_result], path, command="perturbkit run exp.yaml")
    return out, out.read_text(encoding="utf-8")


def test_write_report_writes_one_self_contained_file(two_run_report):
    path, doc = two_run_report
    assert isinstance(path, Path) and path.is_file()
    assert doc.startswith("<!DOCTYPE html>")
    assert path.stat().st_size < 2 * 1024 * 1024
    assert_self_contained(doc)
    # classifier: curves (2), heatmap, per-class, error modes; regressor: curves (2), heatmap
    assert doc.count("<svg") == 8
    assert "<?xml" not in doc and "<!DOCTYPE svg" not in doc and "<metadata>" not in doc


def test_every_section_by_id_and_in_the_table_of_contents(two_run_report):
    _, doc = two_run_report
    ids = set(_parse(doc).ids)
    for i, sections in ((1, RUN_SECTIONS + CLASS_SECTIONS), (2, RUN_SECTIONS)):
        assert f"run{i}" in ids
        for s in sections:
            assert f"run{i}-{s}" in ids
            assert f'href="#run{i}-{s}"' in doc
    assert "run2-per-class" not in ids  # per-class recall has no meaning for regression


def test_header_baseline_and_reproducibility(two_run_report, cls_result, reg_result):
    _, doc = two_run_report
    assert "breast cancer" in doc and "diabetes" in doc
    assert 'class="pill status-ok">complete<' in doc
    acc = cls_result.meta["baseline"]["accuracy"]
    assert f'<div class="card-value">{100 * acc:.1f}%</div>' in doc
    mse = reg_result.meta["baseline"]["mse"]
    assert f'<div class="card-value">{mse:.4g}</div>' in doc
    for r in (cls_result, reg_result):
        m = r.meta
        for needle in (
            m["run_id"],
            m["model"]["fingerprint"],
            m["data_fingerprint"],
            m["environment"]["numpy"],
            f"seed={m['root_seed']}",
        ):
            assert str(needle) in doc
    assert "perturbkit run exp.yaml" in doc
    assert "(given by the user)" in doc


def test_thresholds_table_agrees_with_result(two_run_report, cls_result):
    _, doc = two_run_report
    thr = cls_result.thresholds("accuracy_drop", 0.05)
    for value in thr["threshold"]:
        if value == value:  # reached on the grid
            assert f'<span class="num">{value:.3g}</span>' in doc
    assert "drop ≥ 5 pts" in doc


def test_thresholds_argument(cls_result):
    doc = render_html(cls_result, thresholds=0.03)
    assert "drop ≥ 3 pts" in doc and "drop ≥ 5 pts" not in doc
    doc = render_html(cls_result, thresholds={"flip_rate": [0.1, 0.2], "ece_increase": 0.01})
    assert "flip rate ≥ 10%" in doc and "flip rate ≥ 20%" in doc and "ECE increase" in doc
    with pytest.raises(ParameterError, match="names metric 'mse'"):
        render_html(cls_result, thresholds={"mse": 1.0})
    with pytest.raises(ParameterError, match="tolerances > 0"):
        render_html(cls_result, thresholds=-0.1)


def test_user_strings_are_escaped(evil_result):
    doc = render_html(evil_result, command=f"perturbkit report {EVIL} -o https://x")
    assert EVIL not in doc
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "<img" not in doc
    assert_self_contained(doc)  # the URLs in user data are defused too
    title = re.search(r"<title>(.*?)</title>", doc).group(1)
    assert "&lt;script&gt;" in title


def test_label_free_single_repeat_report(unlabeled_result, reg_unlabeled_result):
    doc = render_html([unlabeled_result, reg_unlabeled_result])
    assert_self_contained(doc)
    ids = set(_parse(doc).ids)
    for s in RUN_SECTIONS:
        assert f"run1-{s}" in ids and f"run2-{s}" in ids
    assert "run1-error-modes" not in ids
    assert "Needs labels" in doc
    assert "No labels were given" in doc
    assert "single repeat" in doc
    assert "flip rate ≥ 5%" in doc  # label-free classification thresholds use the flip rate


def test_mixed_magnitudes_report(mixed_result):
    doc = render_html(mixed_result, title="Mixed grid")
    assert_self_contained(doc)
    assert "<title>Mixed grid</title>" in doc
    assert "gaussian_noise @ 0.5" in doc


def test_bad_results_argument(tmp_path, cls_result):
    with pytest.raises(ParameterError, match="'results' parameter of write_report"):
        write_report([], tmp_path / "r.html")
    with pytest.raises(ParameterError, match="must be a SweepResult"):
        write_report([cls_result, "not a result"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
