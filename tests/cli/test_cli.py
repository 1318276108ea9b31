"""The ``perturbkit`` command end to end, on a temporary SQLite store."""

from __future__ import annotations

import json
import re

import pytest
from _cli_helpers import TINY_EXPERIMENT, runs_in, write

import perturbkit as pk
from perturbkit.cli import app, main


def _ok(result) -> None:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)


def _json(result):
    _ok(result)
    return json.loads(result.stdout)


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    _ok(result)
    assert result.stdout.strip() == f"perturbkit {pk.__version__}"
    assert main(["--version"]) == 0


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["run"],
        ["runs"],
        ["show"],
        ["report"],
        ["perturbations"],
        ["demo"],
        ["calc"],
        ["calc", "drop"],
        ["calc", "taylor"],
        ["calc", "gradient"],
        ["calc", "norm"],
        ["calc", "fgsm"],
        ["calc", "from-run"],
    ],
)
def test_help_everywhere_with_examples(runner, args):
    result = runner.invoke(app, [*args, "--help"])
    _ok(result)
    assert "Usage: perturbkit" in result.stdout
    example = "perturbkit " + (" ".join(args) if args else "run")
    assert example in result.stdout  # an example line


def test_end_to_end_run_runs_show_report(runner, tiny, store_url, tmp_path):
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    out = _json(runner.invoke(app, ["run", str(exp), "--store", store_url, "--json"]))
    run_id = out["run_id"]
    assert out["status"] == "complete" and out["primary_metric"] == "accuracy"
    assert out["store"] == store_url and out["resumed"] is False
    assert 0.99 <= out["baseline"]["accuracy"] <= 1.0  # the labels come from this very model
    labels = {r["label"] for r in out["summary"]}
    assert labels == {"gaussian_noise", "missing_values(fill=mean)"}
    assert {r["magnitude"] for r in out["summary"] if r["label"] == "gaussian_noise"} == {
        0.0,
        0.1,
        0.3,
        1.0,
    }

    listed = _json(runner.invoke(app, ["runs", "--store", store_url, "--json"]))
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["status"] == "complete" and listed[0]["n_cells"] == 2 * (4 + 3)

    shown = _json(runner.invoke(app, ["show", run_id[:6], "--store", store_url, "--json"]))
    assert shown["run"]["run_id"] == run_id
    assert shown["meta"]["root_seed"] == shown["run"]["root_seed"]
    assert shown["meta"]["command"].startswith("perturbkit run ")
    assert shown["meta"]["experiment"]["name"] == "tiny"
    assert shown["baseline"] == out["baseline"]

    # the same run, reloaded through the Python API, agrees with the printed summary
    result = pk.load_run(run_id, store_url)
    s = result.summary()
    acc = s[(s["metric"] == "accuracy") & (s["label"] == "gaussian_noise")]
    printed = [
        r for r in out["summary"] if r["metric"] == "accuracy" and r["label"] == "gaussian_noise"
    ]
    assert [r["mean"] for r in printed] == pytest.approx(acc["mean"].tolist())

    human = runner.invoke(app, ["show", run_id, "--store", store_url])
    _ok(human)
    assert run_id in human.stdout and "gaussian_noise@1" in human.stdout
    assert "accuracy" in human.stdout

    html = tmp_path / "out" / "report.html"
    rep = runner.invoke(app, ["report", run_id, "-o", str(html), "--store", store_url])
    _ok(rep)
    text = html.read_text()
    assert run_id in text and "<svg" in text
    assert not re.search(r"""(src|href)=["']https?://""", text)


def test_run_human_output_and_report_option(runner, tiny, store_url, tmp_path):
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    html = tmp_path / "r.html"
    result = runner.invoke(
        app, ["run", str(exp), "--store", store_url, "--report", str(html), "--quiet"]
    )
    _ok(result)
    run_id = runs_in(store_url)["run_id"].iloc[0]
    assert f"Run {run_id} stored in {store_url}" in result.stdout
    assert html.is_file() and run_id in html.read_text()
    full = runner.invoke(app, ["run", str(exp), "--store", store_url, "--resume"])
    _ok(full)
    assert "resumed and finished" in full.stdout  # nothing left to compute: same run
    assert "95% interval" in full.stdout and "missing_values(fill=mean)" in full.stdout
    assert len(runs_in(store_url)) == 1


def test_report_path_in_file_is_relative_to_the_file(runner, tiny, store_url, tmp_path):
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT + "report: reports/tiny.html\n")
    _ok(runner.invoke(app, ["run", str(exp), "--store", store_url, "-q"]))
    assert (tiny / "reports" / "tiny.html").is_file()


def test_store_in_file_is_relative_to_the_file(runner, tiny, tmp_path, monkeypatch):
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    monkeypatch.chdir(sub)
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT + "store: sqlite:///stored.db\n")
    out = _json(runner.invoke(app, ["run", str(exp), "--json"]))
    assert (tiny / "stored.db").is_file() and not (sub / "stored.db").exists()
    assert len(runs_in(f"sqlite:///{tiny / 'stored.db'}")) == 1
    assert out["store"] == f"sqlite:///{(tiny / 'stored.db').as_posix()}"


def test_default_store_is_the_current_folder(runner, tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    _ok(runner.invoke(app, ["run", str(exp), "-q"]))
    assert len(runs_in(f"sqlite:///{tmp_path / 'perturbkit.db'}")) == 1
    listed = _json(runner.invoke(app, ["runs", "--json"]))
    assert len(listed) == 1


def test_runs_human_and_empty(runner, store_url):
    result = runner.invoke(app, ["runs", "--store", store_url])
    _ok(result)
    assert "No runs" in result.stdout
    assert _json(runner.invoke(app, ["runs", "--store", store_url, "--json"])) == []


def test_show_metric_option(runner, tiny, store_url):
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    run_id = _json(runner.invoke(app, ["run", str(exp), "--store", store_url, "--json"]))["run_id"]
    result = runner.invoke(app, ["show", run_id, "--store", store_url, "--metric", "flip_rate"])
    _ok(result)
    assert "flip_rate" in result.stdout
    bad = runner.invoke(app, ["show", run_id, "--store", store_url, "--metric", "flip_rat"])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == bad.stderr.strip().splitlines()[0]
    assert "Did you mean 'flip_rate'?" in bad.stderr


def test_perturbations_registry(runner):
    items = _json(runner.invoke(app, ["perturbations", "--json"]))
    names = [d["name"] for d in items]
    assert names == pk.perturbations.list()
    for d in items:
        assert {"name", "version", "modality", "unit"} <= set(d)
        assert d["unit"]
    human = runner.invoke(app, ["perturbations"])
    _ok(human)
    assert "gaussian_noise" in human.stdout and "tabular" in human.stdout


# -- the calculator ------------------------------------------------------------------------
def test_calc_taylor_textbook(runner):
    out = _json(
        runner.invoke(app, ["calc", "taylor", "x**2", "--x", "2", "--epsilon", "0.01", "--json"])
    )
    assert out["estimate"] == pytest.approx(4.04)
    assert out["true_value"] == pytest.approx(4.0401)
    assert out["absolute_error"] == pytest.approx(1e-4)
    human = runner.invoke(app, ["calc", "taylor", "x**2", "--x", "2", "--epsilon", "0.01"])
    _ok(human)
    assert "4.04" in human.stdout


def test_calc_norm_textbook_with_negative_entries(runner):
    out = _json(runner.invoke(app, ["calc", "norm", "0.01", "-0.02", "0.03", "--json"]))
    assert out["l2"] == pytest.approx(0.0374166, abs=1e-7)
    assert out["l1"] == pytest.approx(0.06) and out["linf"] == pytest.approx(0.03)
    human = runner.invoke(app, ["calc", "norm", "0.01", "-0.02", "0.03"])
    _ok(human)
    assert "0.0374" in human.stdout


def test_calc_fgsm_textbook(runner):
    out = _json(runner.invoke(app, ["calc", "fgsm", "--epsilon", "0.05", "1", "-1", "1", "--json"]))
    assert out["perturbation"] == pytest.approx([0.05, -0.05, 0.05])
    assert out["sign"] == [1, -1, 1]


def test_calc_drop_and_warning(runner):
    out = _json(
        runner.invoke(
            app, ["calc", "drop", "--p", "0.92", "--epsilon", "0.1", "--sensitivity", "2", "--json"]
        )
    )
    assert out["perturbed"] == pytest.approx(0.72)
    assert out["absolute_change"] == pytest.approx(-0.2)
    assert out["warning"] is None
    warn = runner.invoke(app, ["calc", "drop", "--p", "0.55", "-e", "0.1", "-s", "2"])
    _ok(warn)
    assert "warning:" in warn.stdout


def test_calc_gradient(runner):
    out = _json(
        runner.invoke(
            app, ["calc", "gradient", "x**2 + y**2", "--x", "1,2", "--delta", "0.1,0", "--json"]
        )
    )
    assert out["variables"] == ["x", "y"]
    assert out["change"] == pytest.approx([0.2, 0.0])


def test_calc_from_run(runner, tiny, store_url):
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    run_id = _json(runner.invoke(app, ["run", str(exp), "--store", store_url, "--json"]))["run_id"]
    out = _json(
        runner.invoke(
            app,
            [
                "calc",
                "from-run",
                run_id,
                "gaussian_noise",
                "-e",
                "0.3",
                "--store",
                store_url,
                "--json",
            ],
        )
    )
    assert out["metric"] == "accuracy" and out["magnitude"] == 0.3
    assert out["interpolated"] is False


@pytest.mark.parametrize(
    "args",
    [
        ["calc", "taylor", "__import__('os').system('true')", "--x", "1", "--epsilon", "0.1"],
        ["calc", "norm", "0.1", "abc"],
        ["calc", "fgsm", "--epsilon", "-1", "1"],
        ["calc", "drop", "--p", "1.5", "--epsilon", "0.1", "--sensitivity", "1"],
    ],
)
def test_calc_bad_input_is_one_line(runner, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""


# -- Ctrl-C --------------------------------------------------------------------------------
def test_ctrl_c_leaves_a_resumable_run(runner, tiny, store_url):
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    # call 1 is the clean pass; the interrupt lands in the middle of the grid
    result = runner.invoke(
        app, ["run", str(exp), "--store", store_url, "-q"], env={"PK_TEST_INTERRUPT_AT": "4"}
    )
    assert result.exit_code == 130, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    runs = runs_in(store_url)
    assert len(runs) == 1
    run_id, status, n_cells = runs.iloc[0][["run_id", "status", "n_cells"]]
    assert status == "interrupted" and 0 < n_cells < 14
    assert f"run {run_id} keeps its {n_cells} finished cells" in result.stderr
    assert "--resume" in result.stderr

    out = _json(runner.invoke(app, ["run", str(exp), "--store", store_url, "--resume", "--json"]))
    assert out["run_id"] == run_id and out["resumed"] is True and out["status"] == "complete"
    runs = runs_in(store_url)
    assert len(runs) == 1 and runs["n_cells"].iloc[0] == 14

    # the resumed run holds the same numbers as one computed in one go
    fresh = tiny / "fresh.db"
    again = _json(runner.invoke(app, ["run", str(exp), "--store", str(fresh), "--json"]))
    a = pk.load_run(run_id, store_url).summary()
    b = pk.load_run(again["run_id"], str(fresh)).summary()
    assert a["mean"].tolist() == b["mean"].tolist()


def test_demo_into_tmp_path(runner, tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--json"])
    info = _json(result)
    assert (out / "perturbkit.db").is_file()
    report = out / "report.html"
    assert report.is_file() and info["report"] == str(report)
    runs = runs_in(str(out / "perturbkit.db"))
    assert len(runs) == 2 and set(runs["status"]) == {"complete"}
    assert {r["task"] for r in info["runs"]} == {"classification", "regression"}
    text = report.read_text()
    for r in info["runs"]:
        assert r["run_id"] in text
    assert not re.search(r"""(src|href)=["']https?://""", text)
    # nine tabular perturbations per run, 3 repeats
    result = pk.load_run(info["runs"][0]["run_id"], str(out / "perturbkit.db"))
    assert result.table["perturbation"].nunique() == 9
    assert set(result.table["repeat"]) == {0, 1, 2}
