"""Every file in examples/ runs: YAML experiments through the CLI, scripts as scripts.

Conventions for example scripts: they write their outputs to the current
folder (or to ``--out``); a script with a ``--quick`` option (a smoke-test
size) is run with it; a script that still takes more than a few seconds
carries the comment ``# perturbkit-example: slow`` and runs with --runslow.
"""

from __future__ import annotations

import json
import re
import runpy
import sys
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
# A script that takes more than a few seconds says so in a comment line,
# ``# perturbkit-example: slow``, and runs only with --runslow.
SLOW_MARK = "# perturbkit-example: slow"
KNOWN_SLOW: set[str] = set()


def _script_param(path: Path):
    slow = path.name in KNOWN_SLOW or SLOW_MARK in path.read_text(encoding="utf-8")
    return pytest.param(path, id=path.name, marks=[pytest.mark.slow] if slow else [])


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


OPTIONAL = {"torch", "onnx", "onnxruntime", "skops", "pyarrow"}  # the pip extras


@pytest.mark.parametrize("path", [_script_param(p) for p in SCRIPTS])
def test_script_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # scripts write their outputs to the current folder
    quick = ["--quick"] if '"--quick"' in path.read_text(encoding="utf-8") else []
    monkeypatch.setattr(sys, "argv", [str(path), *quick])  # as `python examples/<script>.py`
    try:
        runpy.run_path(str(path), run_name="__main__")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL:
            pytest.skip(f"{path.name} needs the optional {exc.name}")
        raise
    out = capsys.readouterr().out
    if path.name == "quickstart.py":
        assert "report:" in out and "clean accuracy 0.98" in out
        assert (tmp_path / "quickstart.html").is_file() and (tmp_path / "quickstart.db").is_file()
