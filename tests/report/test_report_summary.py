"""The plain-language summary: every number in it agrees with the run's table."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from perturbkit import ParameterError, find_threshold
from perturbkit.report import default_tolerance, plain_language_summary

_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def _means(result, label, metric):
    s = result.summary()
    s = s[(s["label"] == label) & (s["metric"] == metric)].sort_values("magnitude")
    return dict(zip(s["magnitude"].tolist(), s["mean"].tolist()))


def _sentence(sentences, label):
    (s,) = [x for x in sentences if x.startswith(label + ":")]
    return s


def test_classification_baseline_matches_table(cls_result):
    sentences = plain_language_summary(cls_result)
    acc = cls_result.meta["baseline"]["accuracy"]
    t = cls_result.table
    clean_rows = t[(t["metric"] == "accuracy") & (t["magnitude"] == 0)]["value"]
    assert np.allclose(clean_rows, acc)  # the baseline and the magnitude-0 rows agree
    assert f"accurate on {100 * acc:.1f}% of the rows" in sentences[0]
    assert "569 rows, 30 features" in sentences[0]


def test_classification_claims_agree_with_means(cls_result):
    sentences = plain_language_summary(cls_result, tolerance=0.02)
    clean = cls_result.meta["baseline"]["accuracy"]
    units = {p["name"]: p["unit"] for p in cls_result.meta["perturbations"]}
    labels = list(dict.fromkeys(cls_result.summary()["label"]))
    for label in labels:
        s = _sentence(sentences, label)
        acc = _means(cls_result, label, "accuracy")
        mags = sorted(acc)
        assert units[label.split("(")[0]] in s  # each perturbation's unit is named
        m = re.search(
            r"within 2 points of its clean value up to magnitude "
            + _NUM
            + r"; at "
            + _NUM
            + r" it is "
            + _NUM
            + "%",
            s,
        )
        if m:
            ok, bad, shown = float(m.group(1)), float(m.group(2)), float(m.group(3))
            assert all(clean - acc[x] <= 0.02 for x in mags if x <= ok)
            assert clean - acc[bad] > 0.02 and bad == min(x for x in mags if x > ok)
            assert shown == pytest.approx(100 * acc[bad], abs=0.05)
        elif "at every tested magnitude" in s:
            assert all(clean - v <= 0.02 for v in acc.values())
        else:
            m = re.search(r"smallest tested magnitude, " + _NUM + r", to " + _NUM + "%", s)
            assert m, s
            first = float(m.group(1))
            assert first == min(x for x in mags if x > 0) and clean - acc[first] > 0.02
        m = re.search(r"falls below " + _NUM + r"% at magnitude ≈ " + _NUM, s)
        if m:
            level = float(m.group(1)) / 100
            want = find_threshold(mags, [-acc[x] for x in mags], -level)
            assert float(m.group(2)) == pytest.approx(want, rel=0.05)


def test_classification_names_the_worst_perturbation(cls_result):
    sentences = plain_language_summary(cls_result)
    s = cls_result.summary()
    at_max = s[(s["metric"] == "accuracy_drop") & (s["magnitude"] == 1.0)].set_index("label")[
        "mean"
    ]
    worst = at_max.idxmax()
    (line,) = [x for x in sentences if x.startswith("The largest damage")]
    assert worst in line
    assert f"{100 * at_max[worst]:.3g} points lower" in line
    assert "different units" in line
    assert "means over 2 repeats" in sentences[-1]


def test_tolerance_changes_the_claims(cls_result):
    loose = plain_language_summary(cls_result, tolerance=0.99)
    assert all(
        "at every tested magnitude" in x
        for x in loose
        if x.startswith(("gaussian", "sensor", "outliers"))
    )
    assert "within 99 points" in loose[1]
    with pytest.raises(ParameterError, match="'tolerance' parameter of plain_language_summary"):
        plain_language_summary(cls_result, tolerance=0)


def test_label_free_classification(unlabeled_result):
    sentences = plain_language_summary(unlabeled_result)
    assert sentences[0].startswith("No labels were given")
    for label in ("gaussian_noise", "sensor_drift"):
        s = _sentence(sentences, label)
        flips = _means(unlabeled_result, label, "flip_rate")
        for pct in re.findall(r"([0-9.]+)% (?:of predictions )?change", s):
            assert any(abs(100 * v - float(pct)) < 0.051 for v in [*flips.values(), 0.02, 0.10])
    assert "single repeat" in sentences[-1]


def test_regression_numbers(reg_result):
    sentences = plain_language_summary(reg_result)
    mse = reg_result.meta["baseline"]["mse"]
    assert f"mean squared error is {mse:.4g}" in sentences[0]
    assert f"(RMSE) of {math.sqrt(mse):.4g}" in sentences[0]
    for label in ("gaussian_noise", "sensor_drift"):
        s = _sentence(sentences, label)
        means = _means(reg_result, label, "mse")
        for value, rel in re.findall(r"it is " + _NUM + r" \(([+-][0-9]+)%\)", s):
            hit = [v for v in means.values() if f"{v:.4g}" == value]
            assert hit and f"{100 * (hit[0] / mse - 1):+.0f}" == rel
        m = re.search(r"doubles at magnitude ≈ " + _NUM, s)
        mags = sorted(means)
        want = find_threshold(mags, [means[x] / mse for x in mags], 2.0)
        if math.isfinite(want):
            assert m and float(m.group(1)) == pytest.approx(want, rel=0.05)
        else:
            assert m is None


def test_regression_without_labels(reg_unlabeled_result):
    assert default_tolerance(reg_unlabeled_result) is None
    sentences = plain_language_summary(reg_unlabeled_result)
    assert sentences[0].startswith("No labels were given")
    dev = _means(reg_unlabeled_result, "gaussian_noise", "deviation")
    s = _sentence(sentences, "gaussian_noise")
    assert f"move by {math.sqrt(dev[0.2]):.4g} at magnitude 0.2" in s
    assert f"by {math.sqrt(dev[1.0]):.4g} at 1" in s
    tol = math.sqrt(dev[0.2]) * 1.01
    s = _sentence(plain_language_summary(reg_unlabeled_result, tolerance=tol), "gaussian_noise")
    assert "stay within" in s and "up to magnitude 0.2" in s


def test_default_tolerances(cls_result, unlabeled_result, reg_result):
    assert default_tolerance(cls_result) == 0.02
    assert default_tolerance(unlabeled_result) == 0.02
    assert default_tolerance(reg_result) == 0.10
