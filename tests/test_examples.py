"""Every file in examples/ runs: YAML experiments through the CLI, scripts as scripts."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest
import sklearn.datasets  # noqa: F401 - its first import touches Python's global random (rich)
from typer.testing import CliRunner

import perturbkit as pk
from perturbkit.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
YAMLS = sorted(EXAMPLES.glob("*.yaml"))
# helper modules imported by the experiments; every other .py is a script to run
HELPERS = {"models.py"}
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if p.name not in HELPERS)


def test_the_examples_are_there():
    assert len(YAMLS) >= 2 and {p.name for p in SCRIPTS} >= {"quickstart.py"}


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_yaml_experiment_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in examples/ or the current folder
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    html = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["run", str(path), "--store", url, "--report", str(html), "--json"]
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = json.loads(result.stdout)
    assert out["status"] == "complete"
    run = pk.load_run(out["run_id"], url)
    exp = pk_experiment(path)
    assert run.meta["name"] == exp.run_name
    assert run.table["perturbation"].nunique() == len({p.name for p in exp.perturbations})
    assert set(run.table["repeat"]) == set(range(exp.repeats))
    text = html.read_text()
    assert out["run_id"] in text and not re.search(r"""(src|href)=["']https?://""", text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "runs.db"]


def pk_experiment(path: Path):
    from perturbkit.experiment import load_experiment

    return load_experiment(path)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    if path.name == "quickstart.py":
        assert "report:" in out and "clean accuracy 0.98" in out
        assert (tmp_path / "quickstart.html").is_file() and (tmp_path / "quickstart.db").is_file()
