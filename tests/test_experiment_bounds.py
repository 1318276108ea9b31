"""The ``bounds:`` section of experiment files: validation, running, storing, reporting."""

from __future__ import annotations

import re
import textwrap
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets  # noqa: F401 - its first import touches Python's global random (rich)

import perturbkit as pk
from perturbkit.analysis import bounds as bounds_module
from perturbkit.analysis.bounds_store import is_bounds_run, load_certification, load_curve
from perturbkit.experiment import (
    BoundsSpec,
    ExperimentError,
    ExperimentResult,
    load_experiment,
    run_experiment,
    write_experiment_report,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

REGRESSION = """
name: reg
model:
  entry_point: models.py:diabetes_regressor
  call: true
data:
  dataset: diabetes
  limit: 150
seed: 5
bounds:
  levels: [0, 0.1, 0.5]
  n_draws: 16
  confidence: 0.9
  sampler: antithetic
"""

BOTH = (
    REGRESSION.replace("name: reg", "name: both")
    + """perturbations:
  - name: gaussian_noise
    magnitudes: [0, 0.1, 0.5]
repeats: 2
"""
)

CLASSIFIER = """
name: cls
model:
  entry_point: models.py:breast_cancer_classifier
  call: true
data:
  dataset: breast_cancer
  limit: 80
seed: 7
bounds:
  levels: [0, 0.2]
  n_draws: 8
  certify:
    sigma: [50, 100]
    n0: 20
    n: 200
    alpha: 0.01
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "models.py").write_text((EXAMPLES / "models.py").read_text())
    return tmp_path


def _write(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _url(folder: Path) -> str:
    return f"sqlite:///{folder / 'runs.db'}"


def _runs(folder: Path) -> pd.DataFrame:
    with pk.Store(folder / "runs.db") as st:
        return st.list_runs()


def test_choices_match_the_bounds_module():
    fields = BoundsSpec.model_fields
    for name, allowed in (
        ("noise", bounds_module.NOISES),
        ("method", bounds_module.CONFIDENCE_METHODS),
        ("sampler", bounds_module.SAMPLERS),
        ("target", bounds_module.TARGETS),
    ):
        assert typing.get_args(fields[name].annotation) == allowed, name
    # every key of the section is an argument of robustness_curve, same default
    import inspect

    sig = inspect.signature(pk.robustness_curve).parameters
    for name, f in fields.items():
        if name in ("certify", "levels"):
            continue
        assert name in sig and sig[name].default == f.default, name


def test_bounds_only_runs_the_curve_with_the_experiment_model_data_and_seed(folder):
    exp = load_experiment(_write(folder, REGRESSION))
    assert exp.perturbations is None and exp.bounds.levels == [0.0, 0.1, 0.5]
    result = run_experiment(exp, store=_url(folder), progress=False)
    assert isinstance(result, ExperimentResult) and isinstance(result, pk.SweepResult)
    assert result.sweep is None and result.run_id == result.bounds_run_id
    # the same curve as robustness_curve called with the section's keys, bit for bit
    X, y, _ = exp.load_data()
    direct = pk.robustness_curve(
        exp.load_model(),
        X,
        y,
        levels=[0, 0.1, 0.5],
        n_draws=16,
        confidence=0.9,
        sampler="antithetic",
        seed=5,
    )
    pd.testing.assert_frame_equal(result.bounds.table, direct.table, check_exact=True)
    assert result.bounds.label == "reg" and result.bounds.meta["root_seed"] == 5
    # stored as its own run, named after the experiment
    runs = _runs(folder)
    assert runs["name"].tolist() == ["reg bounds"] and runs["status"].tolist() == ["complete"]
    stored = load_curve(result.bounds_run_id, _url(folder))
    pd.testing.assert_frame_equal(stored.table, direct.table, check_exact=True)
    assert stored.meta["command"] == result.meta["command"]
    assert stored.meta["experiment"]["bounds"]["sampler"] == "antithetic"
    assert stored.meta["sweep_run_id"] is None and stored.meta["seed_given"] is True
    assert is_bounds_run(result.meta) and result.meta["status"] == "complete"


def test_both_sections_keep_the_sweep_result_and_link_the_runs(folder):
    exp = load_experiment(_write(folder, BOTH))
    result = run_experiment(exp, store=_url(folder), progress=False)
    # the sweep's result, as before
    assert result.meta["name"] == "both" and result.meta["status"] == "complete"
    assert set(result.table["perturbation"]) == {"gaussian_noise"}
    assert result.sweep is not None and result.sweep.run_id == result.run_id
    assert result.bounds_run_id not in (None, result.run_id)
    swept = pk.load_run(result.run_id, _url(folder))
    assert swept.meta["bounds_run_id"] == result.bounds_run_id
    curve = load_curve(result.bounds_run_id, _url(folder))
    assert curve.meta["sweep_run_id"] == result.run_id and curve.meta["name"] == "both bounds"
    pd.testing.assert_frame_equal(curve.table, result.bounds.table, check_exact=True)
    assert sorted(_runs(folder)["name"]) == ["both", "both bounds"]
    # same noise, same unit: the sweep's MSE at σ sits under the curve's bound at ε = σ
    mse = result.summary().query("metric == 'mse'").set_index("magnitude")["mean"]
    t = result.bounds.table.set_index("level")
    assert (mse.loc[[0.1, 0.5]] <= t.loc[[0.1, 0.5], "mse_upper"] * 1.2).all()
    # the report holds the sweep and the bounds section
    path = write_experiment_report(exp, result, folder / "r.html")
    doc = path.read_text()
    assert result.run_id in doc and result.bounds_run_id in doc
    assert 'id="bounds"' in doc and 'id="run1"' in doc
    assert not re.search(r"""(src|href)=["']https?://""", doc)


def test_resume_reuses_a_stored_curve(folder):
    exp = load_experiment(_write(folder, REGRESSION))
    first = run_experiment(exp, store=_url(folder), progress=False)
    again = run_experiment(exp, store=_url(folder), resume=True, progress=False)
    assert again.bounds_run_id == first.bounds_run_id and len(_runs(folder)) == 1
    pd.testing.assert_frame_equal(again.bounds.table, first.bounds.table, check_exact=True)
    fresh = run_experiment(exp, store=_url(folder), progress=False)
    assert fresh.bounds_run_id != first.bounds_run_id and len(_runs(folder)) == 2
    pd.testing.assert_frame_equal(fresh.bounds.table, first.bounds.table, check_exact=True)


def test_certify_section_for_a_classifier(folder):
    exp = load_experiment(_write(folder, CLASSIFIER))
    assert exp.bounds.certify.sigma == [50.0, 100.0]
    result = run_experiment(exp, store=_url(folder), progress=False)
    cert = result.certification
    assert cert["sigma"].tolist() == [50.0, 100.0] and len(result.certified) == 2
    # the same as certify called directly with the curve's root seed
    X, y, _ = exp.load_data()
    direct = pk.certify(
        exp.load_model(), np.asarray(X), sigma=50.0, n0=20, n=200, alpha=0.01, seed=7
    )
    np.testing.assert_array_equal(result.certified[0].radius, direct.radius)
    assert cert["abstain_rate"].iloc[0] == direct.abstain.mean()
    acc0 = direct.certified_accuracy(y, [0.0])[0]
    assert cert["certified_accuracy@0sigma"].iloc[0] == acc0
    stored = load_certification(result.bounds_run_id, _url(folder))
    pd.testing.assert_frame_equal(stored, cert, check_exact=True)
    doc = write_experiment_report(exp, result, folder / "c.html").read_text()
    assert 'id="bounds-certification"' in doc and "Certified robustness" in doc


def test_a_sigma_written_as_one_number(folder):
    text = CLASSIFIER.replace("sigma: [50, 100]", "sigma: 0.5")
    assert load_experiment(_write(folder, text)).bounds.certify.sigma == [0.5]


def _error(folder: Path, text: str) -> str:
    with pytest.raises(ExperimentError) as exc:
        load_experiment(_write(folder, text))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(folder / "exp.yaml")), msg
    return msg


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        (
            "  n_draws: 16",
            "  n_draw: 16",
            [
                "exp.yaml:11:",
                "bounds.n_draw: unknown field",
                "Did you mean 'n_draws'?",
                "Allowed: levels",
            ],
        ),
        (
            "[0, 0.1, 0.5]",
            "[0, -0.1, 0.5]",
            ["exp.yaml:10:", "bounds.levels[1]: must be a finite float >= 0. Got -0.1 instead."],
        ),
        ("[0, 0.1, 0.5]", "[0, .nan]", ["bounds.levels[1]: must be a finite float >= 0"]),
        ("[0, 0.1, 0.5]", "[0, 0.1, 0.1]", ["bounds.levels[2]: repeats the level 0.1"]),
        ("[0, 0.1, 0.5]", "[]", ["bounds.levels: must have at least 1 item"]),
        ("  levels: [0, 0.1, 0.5]\n", "", ["bounds.levels: required field is missing."]),
        (
            "confidence: 0.9",
            "confidence: 1.5",
            ["exp.yaml:12:", "bounds.confidence: must be less than 1", "Got 1.5 instead."],
        ),
        ("confidence: 0.9", "confidence: 0", ["bounds.confidence: must be greater than 0"]),
        (
            "sampler: antithetic",
            "sampler: sobol",
            ["bounds.sampler: must be 'qmc', 'mc', 'antithetic' or 'orthogonal'", "Got 'sobol'"],
        ),
        ("n_draws: 16", "n_draws: 15", ["bounds.n_draws: must be even with sampler 'antithetic'"]),
        ("n_draws: 16", "n_draws: 0", ["bounds.n_draws: must be greater than or equal to 1"]),
        (
            "sampler: antithetic",
            "sampler: qmc\n  target: dataset\n  method: bootstrap",
            ["bounds.method: must be 't' or 'hoeffding' with target 'dataset'"],
        ),
        (
            "sampler: antithetic",
            "sampler: mc\n  value_range: -1",
            ["bounds.value_range: must be greater than 0"],
        ),
        ("sampler: antithetic", "sampler: mc\n  noise: gauss", ["bounds.noise: must be"]),
        (
            "sampler: antithetic",
            "sampler: orthogonal\n  noise: uniform",
            ["bounds.sampler: must be 'qmc', 'mc' or 'antithetic' with noise 'uniform'"],
        ),
        (
            "n_draws: 16\n  confidence: 0.9\n  sampler: antithetic",
            "n_draws: 15\n  confidence: 0.9\n  sampler: orthogonal\n  target: dataset",
            ["bounds.n_draws: must give at least 2 independent replicates", "orthogonal: even"],
        ),
        (
            "sampler: antithetic",
            "sampler: mc\n  certify: {sigma: [0.1], n0: 200, n: 100}",
            ["bounds.certify.n0: must be at most bounds.certify.n (100). Got 200 instead."],
        ),
        (
            "sampler: antithetic",
            "sampler: mc\n  certify: {sigma: [0.5, 0]}",
            ["bounds.certify.sigma[1]: must be a finite float > 0. Got 0 instead."],
        ),
        (
            "sampler: antithetic",
            "sampler: mc\n  certify: {sigma: [0.5, 0.5]}",
            ["bounds.certify.sigma[1]: repeats the sigma 0.5"],
        ),
        (
            "sampler: antithetic",
            "sampler: mc\n  certify: {sigma: 1, alpha: 1}",
            ["bounds.certify.alpha: must be less than 1"],
        ),
        (
            "sampler: antithetic",
            "sampler: mc\n  certify: {sigma: 1, sigmas: 1}",
            ["bounds.certify.sigmas: unknown field", "Did you mean 'sigma'?"],
        ),
        (
            "bounds:\n  levels: [0, 0.1, 0.5]\n  n_draws: 16\n  confidence: 0.9\n"
            "  sampler: antithetic\n",
            "",
            [
                "perturbations: required: an experiment needs 'perturbations' (a sweep), "
                "'bounds' (robustness bounds) or both."
            ],
        ),
    ],
)
def test_validation_names_the_field(folder, old, new, needles):
    text = textwrap.dedent(REGRESSION).lstrip()
    assert old in text
    msg = _error(folder, text.replace(old, new))
    for n in needles:
        assert n in msg, (n, msg)


def test_certify_on_a_regressor_fails_before_anything_is_stored(folder):
    text = REGRESSION.replace("  sampler: antithetic", "  certify: {sigma: 0.5}") + (
        "perturbations:\n  - name: gaussian_noise\n    magnitudes: [0, 0.1]\n"
    )
    exp = load_experiment(_write(folder, text))
    with pytest.raises(pk.ModelError, match=r"exp\.yaml:\d+: bounds\.certify: certify needs a"):
        run_experiment(exp, store=_url(folder), progress=False)
    assert _runs(folder).empty


def test_runtime_errors_name_the_bounds_field(folder):
    text = REGRESSION.replace("  sampler: antithetic", "  method: hoeffding")
    exp = load_experiment(_write(folder, text))
    with pytest.raises(pk.ParameterError, match=r"bounds\.value_range: required with method"):
        run_experiment(exp, store=_url(folder), progress=False)
    # a range the squared errors break: robustness_curve's own error, under the section
    text = REGRESSION.replace("  sampler: antithetic", "  method: hoeffding\n  value_range: 1")
    exp = load_experiment(_write(folder, text))
    with pytest.raises(pk.DataError, match=r"exp\.yaml:9: bounds: A per-draw squared value"):
        run_experiment(exp, store=_url(folder), progress=False)
    assert _runs(folder).empty


def test_the_example_has_both_sections():
    exp = load_experiment(EXAMPLES / "diabetes_bounds.yaml")
    assert exp.perturbations and exp.bounds is not None
    assert exp.bounds.levels == exp.perturbations[0].magnitudes  # one axis for both
