"""``perturbkit bound`` and ``perturbkit certify``: end to end, stored runs, bad input."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets  # noqa: F401 - its first import touches Python's global random (rich)

import perturbkit as pk
from perturbkit.analysis.bounds_store import load_curve
from perturbkit.cli import app, main

REG_MODEL = """
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

X, y = load_diabetes(return_X_y=True)
model = Ridge(alpha=0.1).fit(X, y)
"""


@pytest.fixture
def reg(tmp_path: Path) -> str:
    """An entry point to a fitted ridge regression on the diabetes data."""
    (tmp_path / "reg.py").write_text(REG_MODEL)
    return f"{tmp_path / 'reg.py'}:model"


def _json(result) -> dict:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def _assert_bad(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    for n in needles:
        assert n in line, (n, line)
    return line


def _direct(model_spec: str, levels, **kw) -> pk.RobustnessCurve:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return pk.robustness_curve(pk.load_model(model_spec), X, y, levels=levels, **kw)


def test_bound_json_end_to_end(runner, reg):
    out = _json(
        runner.invoke(
            app,
            [
                "bound",
                reg,
                "diabetes",
                "--levels",
                "0,0.05,0.1,0.5",
                "--draws",
                "16",
                "--seed",
                "0",
                "--json",
            ],
        )
    )
    direct = _direct(reg, [0, 0.05, 0.1, 0.5], n_draws=16, seed=0)
    got = pd.DataFrame(out["curve"])
    assert list(got.columns) == list(direct.table.columns)
    for c in direct.table.columns:  # JSON floats round-trip exactly
        assert got[c].tolist() == direct.table[c].tolist(), c
    assert out["meta"]["root_seed"] == 0 and out["meta"]["n_draws"] == 16
    assert out["meta"]["task"] == "regression" and out["meta"]["target"] == "population"
    assert out["column"] == "mse_upper_normalized" and out["tolerance"] == 1.0
    assert out["auc"] == direct.auc(normalize=True)
    assert out["radius"] == direct.radius(1.0)
    assert out["run_id"] is None and out["store"] is None
    assert out["data"]["source"] == "sklearn:diabetes" and out["label"] == "model on diabetes"
    assert "--seed 0" in out["command"] and "--levels 0,0.05,0.1,0.5" in out["command"]


def test_bound_options_map_to_robustness_curve(runner, reg):
    out = _json(
        runner.invoke(
            app,
            [
                "bound",
                reg,
                "diabetes",
                "--levels",
                "0.1,0",
                "--noise",
                "laplace",
                "--absolute",
                "--confidence",
                "0.9",
                "--draws",
                "8",
                "--method",
                "hoeffding",
                "--sampler",
                "mc",
                "--scope",
                "dataset",
                "--value-range",
                "1e6",
                "--simultaneous",
                "--seed",
                "4",
                "--label",
                "ridge",
                "--json",
            ],
        )
    )
    direct = _direct(
        reg,
        [0, 0.1],
        noise="laplace",
        relative=False,
        confidence=0.9,
        n_draws=8,
        method="hoeffding",
        sampler="mc",
        target="dataset",
        value_range=1e6,
        simultaneous=True,
        seed=4,
    )
    assert pd.DataFrame(out["curve"])["mse_upper"].tolist() == direct.table["mse_upper"].tolist()
    m = out["meta"]
    assert (m["noise"], m["relative"], m["method"], m["sampler"], m["target"]) == (
        "laplace",
        False,
        "hoeffding",
        "mc",
        "dataset",
    )
    assert m["simultaneous"] is True and m["alpha_per_bound"] == pytest.approx(0.05)
    assert out["label"] == "ridge"


def test_bound_store_figure_csv_show_runs_report(runner, reg, tmp_path, store_url):
    fig, csv = tmp_path / "out" / "curve.svg", tmp_path / "out" / "curve.csv"
    out = _json(
        runner.invoke(
            app,
            [
                "bound",
                reg,
                "diabetes",
                "--levels",
                "0,0.1,0.5",
                "--draws",
                "16",
                "--store",
                store_url,
                "--figure",
                str(fig),
                "--csv",
                str(csv),
                "--json",
            ],
        )
    )
    run_id = out["run_id"]
    assert run_id and out["store"] == store_url
    assert out["meta"]["root_seed"] > 0  # drawn, and shown so it can be given again
    stored = load_curve(run_id, store_url)
    assert stored.table["mse_upper"].tolist() == [r["mse_upper"] for r in out["curve"]]
    assert stored.meta["command"] == out["command"] and stored.meta["name"].endswith(" bounds")
    assert fig.read_text().lstrip().startswith("<?xml") and "<svg" in fig.read_text()
    pd.testing.assert_frame_equal(pd.read_csv(csv), stored.to_pandas(), check_dtype=False)
    # the printed command computes the same curve again, bit for bit
    again = _json(runner.invoke(app, [*shlex.split(out["command"])[1:], "--json"]))
    assert again["curve"] == out["curve"]
    # runs lists it; show prints its curve; report draws it
    runs = _json(runner.invoke(app, ["runs", "--store", store_url, "--json"]))
    assert [r["run_id"] for r in runs] == [run_id] and runs[0]["n_cells"] == 3
    shown = _json(runner.invoke(app, ["show", run_id[:6], "--store", store_url, "--json"]))
    assert shown["kind"] == "bounds" and shown["run"]["run_id"] == run_id
    assert shown["curve"] == out["curve"] and shown["auc"] == out["auc"]
    assert shown["meta"]["command"] == out["command"] and shown["certification"] is None
    text = runner.invoke(app, ["show", run_id, "--store", store_url])
    assert text.exit_code == 0, text.stderr
    for needle in ("robustness curve", "95% population bounds", "bound/Var(y)", "AUC of"):
        assert needle in text.stdout, needle
    col = runner.invoke(
        app, ["show", run_id, "--store", store_url, "--metric", "deviation_upper", "--json"]
    )
    assert _json(col)["column"] == "deviation_upper"
    _assert_bad(
        runner.invoke(app, ["show", run_id, "--store", store_url, "--metric", "mse_uper"]),
        "no column 'mse_uper'",
        "Did you mean 'mse_upper'?",
    )
    html = tmp_path / "r.html"
    rep = runner.invoke(app, ["report", run_id, "--store", store_url, "-o", str(html)])
    assert rep.exit_code == 0, rep.stderr
    doc = html.read_text()
    assert 'id="bounds"' in doc and run_id in doc and "Robustness bounds" in doc
    assert not re.search(r"""(src|href)=["']https?://""", doc)


def test_bound_text_output(runner, reg):
    result = runner.invoke(
        app, ["bound", reg, "diabetes", "--levels", "0,0.1", "--draws", "8", "--seed", "3"]
    )
    assert result.exit_code == 0, result.stderr
    for needle in ("model on diabetes", "MSE", "Minkowski", "robustness radius", "Seed 3"):
        assert needle in result.stdout, needle
    assert "Run " not in result.stdout  # nothing stored without --store


def test_bound_without_labels_bounds_the_deviation(runner, reg, tmp_path):
    from sklearn.datasets import load_diabetes

    X, _ = load_diabetes(return_X_y=True)
    path = tmp_path / "unlabeled.csv"
    pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]).to_csv(path, index=False)
    out = _json(
        runner.invoke(
            app,
            ["bound", reg, str(path), "--levels", "0,0.2", "--draws", "8", "--seed", "1", "--json"],
        )
    )
    cols = set(out["curve"][0])
    assert {"deviation", "deviation_upper"} <= cols and "mse" not in cols
    assert out["column"] == "deviation_upper_normalized"


def test_bound_classifier(runner, tiny):
    out = _json(
        runner.invoke(
            app,
            [
                "bound",
                f"{tiny / 'tiny.py'}:model",
                str(tiny / "tiny.npz"),
                "--task",
                "classification",
                "--levels",
                "0,0.5",
                "--draws",
                "8",
                "--seed",
                "2",
                "--json",
            ],
        )
    )
    row = out["curve"][1]
    assert out["meta"]["task"] == "classification"
    assert 0 <= row["error_rate"] <= row["error_rate_upper"] <= 1
    assert 0 < row["flip_rate"] <= row["flip_rate_upper"] <= 1


def test_certify_json(runner, tiny):
    spec, data = f"{tiny / 'tiny.py'}:model", str(tiny / "tiny.npz")
    out = _json(
        runner.invoke(
            app,
            [
                "certify",
                spec,
                data,
                "--task",
                "classification",
                "--sigma",
                "0.25,0.5",
                "--n0",
                "20",
                "--n",
                "200",
                "--alpha",
                "0.01",
                "--seed",
                "0",
                "--json",
            ],
        )
    )
    assert [s["sigma"] for s in out["summary"]] == [0.25, 0.5] and out["root_seed"] == 0
    assert [len(r["rows"]) for r in out["results"]] == [300, 300]
    with np.load(data) as npz:
        d = {k: npz[k] for k in npz.files}
    direct = pk.certify(
        pk.load_model(spec, task="classification"),
        d["X"],
        sigma=0.25,
        n0=20,
        n=200,
        alpha=0.01,
        seed=0,
    )
    assert [r["radius"] for r in out["results"][0]["rows"]] == direct.radius.tolist()
    s = out["summary"][0]
    assert s["abstain_rate"] == direct.abstain.mean()
    assert s["certified_accuracy@0sigma"] == direct.certified_accuracy(d["y"], [0])[0]
    assert s["certified_accuracy@1sigma"] == direct.certified_accuracy(d["y"], [0.25])[0]
    # a linear classifier: no certified radius beyond the distance to its hyperplane (α = 1%)
    w = np.array([1.5, -1.0, 0.5, 2.0, -0.5])
    dist = np.abs(d["X"] @ w) / np.linalg.norm(w)
    assert (direct.radius <= dist + 1e-12).mean() >= 0.95


def test_certify_text(runner, tiny):
    result = runner.invoke(
        app,
        [
            "certify",
            f"{tiny / 'tiny.py'}:model",
            str(tiny / "tiny.npz"),
            "--task",
            "classification",
            "--sigma",
            "0.5",
            "--n0",
            "10",
            "--n",
            "100",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.stderr
    for needle in ("Certified robustness", "abstain", "r = 0", "0.5σ", "2σ", "Seed 1"):
        assert needle in result.stdout, needle


BAD_BOUND = {
    "negative_level": (["--levels", "0,-0.1"], ["--levels", "Got -0.1 instead."]),
    "nan_level": (["--levels", "0,nan"], ["--levels", ">= 0", "nan"]),
    "not_a_number": (["--levels", "0,abc"], ["--levels must be numbers", "'abc'"]),
    "repeated_level": (["--levels", "0,0.1,0.1"], ["must not repeat", "0.1"]),
    "confidence_1.5": (
        ["--levels", "0,0.1", "--confidence", "1.5"],
        ["--confidence must be in (0, 1)", "Got 1.5 instead."],
    ),
    "confidence_0": (["--levels", "0,0.1", "--confidence", "0"], ["--confidence"]),
    "no_draws": (["--levels", "0,0.1", "--draws", "0"], ["--draws", "Got 0 instead."]),
    "odd_draws_qmc": (["--levels", "0,0.1", "--draws", "15"], ["'n_draws'", "even", "15"]),
    "unknown_noise": (
        ["--levels", "0,0.1", "--noise", "gauss"],
        ["--noise must be one of", "Did you mean 'gaussian'?"],
    ),
    "unknown_scope": (["--levels", "0,0.1", "--scope", "world"], ["--scope", "population"]),
    "unknown_method": (["--levels", "0,0.1", "--method", "z"], ["--method", "bootstrap"]),
    "bad_figure": (["--levels", "0,0.1", "--figure", "out.txt"], ["--figure", ".png, .svg"]),
    "bad_value_range": (["--levels", "0,0.1", "--value-range", "-1"], ["--value-range"]),
    "hoeffding_without_range": (
        ["--levels", "0,0.1", "--method", "hoeffding"],
        ["'value_range'", "hoeffding"],
    ),
    "unknown_task": (["--levels", "0,0.1", "--task", "ranking"], ["--task"]),
}


@pytest.mark.parametrize("case", list(BAD_BOUND), ids=list(BAD_BOUND))
def test_bound_bad_input_is_one_line(runner, reg, store_url, case):
    args, needles = BAD_BOUND[case]
    _assert_bad(
        runner.invoke(app, ["bound", reg, "diabetes", *args, "--store", store_url]), *needles
    )
    assert pk.Store(store_url).list_runs().empty  # nothing half-stored


def test_bound_unreachable_store_fails_first(runner, reg, tmp_path):
    bad = f"sqlite:///{tmp_path / 'no' / 'such' / 'runs.db'}"
    _assert_bad(
        runner.invoke(app, ["bound", reg, "diabetes", "--levels", "0", "--store", bad]),
        "does not exist",
    )


def test_bound_bad_model_and_data(runner, reg, tmp_path):
    _assert_bad(
        runner.invoke(app, ["bound", f"{tmp_path / 'none.py'}:m", "diabetes", "--levels", "0"]),
        "does not exist",
    )
    _assert_bad(
        runner.invoke(app, ["bound", reg, "diabets", "--levels", "0"]), "Did you mean 'diabetes'?"
    )
    _assert_bad(runner.invoke(app, ["bound", str(tmp_path / "m.pkl"), "diabetes", "--levels", "0"]))


BAD_CERTIFY = {
    "sigma_0": (["--sigma", "0"], ["--sigma must be finite numbers > 0. Got 0 instead."]),
    "sigma_negative": (["--sigma", "0.5,-1"], ["--sigma", "Got -1 instead."]),
    "n0_over_n": (
        ["--sigma", "0.5", "--n0", "200", "--n", "100"],
        ["--n0 must be at most --n (100). Got 200 instead."],
    ),
    "alpha": (["--sigma", "0.5", "--alpha", "1.5"], ["--alpha must be in (0, 1)"]),
}


@pytest.mark.parametrize("case", list(BAD_CERTIFY), ids=list(BAD_CERTIFY))
def test_certify_bad_input_is_one_line(runner, tiny, case):
    args, needles = BAD_CERTIFY[case]
    spec, data = f"{tiny / 'tiny.py'}:model", str(tiny / "tiny.npz")
    _assert_bad(
        runner.invoke(app, ["certify", spec, data, "--task", "classification", *args]), *needles
    )


def test_certify_on_a_regressor_is_one_line(runner, reg):
    _assert_bad(
        runner.invoke(
            app, ["certify", reg, "diabetes", "--sigma", "0.1", "--n0", "10", "--n", "50"]
        ),
        "certify needs a classifier",
        "regression model",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["bound", "m.py:model", "diabetes"],  # --levels is required
        ["bound", "m.py:model", "diabetes", "--levels", "0", "--draws", "many"],
        ["certify", "m.py:model", "diabetes"],  # --sigma is required
    ],
)
def test_usage_errors_through_main_are_one_line(capsys, argv):
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_run_a_bounds_only_experiment(runner, tmp_path, store_url):
    examples = Path(__file__).resolve().parents[2] / "examples"
    (tmp_path / "models.py").write_text((examples / "models.py").read_text())
    (tmp_path / "b.yaml").write_text(
        "name: b\nmodel:\n  entry_point: models.py:diabetes_regressor\n  call: true\n"
        "data:\n  dataset: diabetes\nseed: 0\nbounds:\n  levels: [0, 0.1]\n  n_draws: 8\n"
    )
    text = runner.invoke(app, ["run", str(tmp_path / "b.yaml"), "--store", store_url])
    assert text.exit_code == 0, text.stderr
    assert "Bounds run " in text.stdout and "b: 95% population bounds" in text.stdout
    out = _json(
        runner.invoke(
            app, ["run", str(tmp_path / "b.yaml"), "--store", store_url, "--json", "--resume"]
        )
    )
    assert out["run_id"] == out["bounds_run_id"] and out["summary"] == []
    assert out["bounds"]["curve"][1]["level"] == 0.1 and out["primary_metric"] is None
    assert len(pk.Store(store_url).list_runs()) == 1  # --resume reused the stored curve
