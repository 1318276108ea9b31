"""Bad input: one line on stderr, exit code 2, no traceback, no run in the store."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _cli_helpers import TINY_EXPERIMENT, runs_in, write

import perturbkit as pk
from perturbkit.cli import app, main

PERTURBKIT = Path(sys.executable).parent / "perturbkit"


def _assert_bad(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    for n in needles:
        assert n in line, (n, line)
    return line


def _tiny_with(**replace: str) -> str:
    text = TINY_EXPERIMENT
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


BAD_EXPERIMENTS = {
    "malformed_yaml": (
        "name: x\nmodel:\n  entry_point: tiny.py:model\n   task: classification\n",
        ["bad.yaml:4", "malformed YAML"],
    ),
    "unknown_field": (
        _tiny_with(**{"  task: classification": "  task: classification\n  knd: onnx"}),
        ["bad.yaml:5", "model.knd: unknown field", "Did you mean 'kind'?", "Allowed: path"],
    ),
    "unknown_top_level_field": (
        TINY_EXPERIMENT + "repeat: 3\n",
        ["repeat: unknown field", "Did you mean 'repeats'?"],
    ),
    "unknown_perturbation": (
        _tiny_with(**{"name: missing_values": "name: gausian_noise"}),
        ["bad.yaml:10", "perturbations[1].name", "Did you mean 'gaussian_noise'?"],
    ),
    "negative_magnitude": (
        _tiny_with(**{"[0, 0.1, 0.5]": "[-0.1, 0.1, 0.5]"}),
        [
            "bad.yaml:12",
            "perturbations[1].magnitudes[0]: must be a finite float >= 0",
            "Got -0.1 instead.",
        ],
    ),
    "magnitude_over_its_range": (
        _tiny_with(**{"[0, 0.1, 0.5]": "[0, 0.1, 1.5]"}),
        ["perturbations[1].magnitudes[2]", "[0, 1]", "Got 1.5 instead."],
    ),
    "bad_param": (
        _tiny_with(**{"{fill: mean}": "{fill: mode}"}),
        ["perturbations[1].params", "'fill'", "'mode'"],
    ),
    "missing_data_file": (
        _tiny_with(**{"tiny.npz": "nothere.csv\n  target: y"}),
        ["data.path", "nothere.csv", "does not exist"],
    ),
    "missing_target_column": (
        _tiny_with(**{"tiny.npz": "table.csv\n  target: labels"}),
        ["data.target", "'labels'", "Did you mean 'label'?"],
    ),
    "unreadable_data_file": (
        _tiny_with(**{"tiny.npz": "garbage.parquet"}),
        ["data.path", "garbage.parquet", "could not be read"],
    ),
    "nan_in_data": (
        _tiny_with(**{"tiny.npz": "nan.npz"}),
        ["X must be finite", "nan"],
    ),
    "missing_model_file": (
        _tiny_with(**{"entry_point: tiny.py:model": "path: nothere.onnx"}),
        ["model.path", "nothere.onnx", "does not exist"],
    ),
    "pickle_without_allow_pickle": (
        _tiny_with(**{"entry_point: tiny.py:model": "path: model.pkl"}),
        ["model.path", "pickle", "--allow-pickle"],
    ),
    "unreachable_store": (
        TINY_EXPERIMENT + "store: sqlite:////nonexistent-folder/sub/runs.db\n",
        ["nonexistent-folder"],
    ),
}


@pytest.fixture
def bad_folder(tiny: Path) -> Path:
    X = np.load(tiny / "tiny.npz")["X"].copy()
    y = np.load(tiny / "tiny.npz")["y"]
    X[17, 3] = np.nan
    np.savez(tiny / "nan.npz", X=X, y=y)
    (tiny / "table.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    (tiny / "garbage.parquet").write_bytes(b"this is not parquet at all")
    from sklearn.linear_model import LogisticRegression

    clean = np.load(tiny / "tiny.npz")
    with open(tiny / "model.pkl", "wb") as fh:
        pickle.dump(LogisticRegression().fit(clean["X"], clean["y"]), fh)
    return tiny


@pytest.mark.parametrize("case", sorted(BAD_EXPERIMENTS))
def test_bad_experiment(runner, bad_folder, store_url, case):
    text, needles = BAD_EXPERIMENTS[case]
    exp = write(bad_folder, "bad.yaml", text)
    args = ["run", str(exp)] + ([] if case == "unreachable_store" else ["--store", store_url])
    _assert_bad(runner.invoke(app, args), *needles)
    if case != "unreachable_store":
        assert runs_in(store_url).empty  # nothing half-written


def test_allow_pickle_and_store_option_override(runner, bad_folder, store_url):
    text = _tiny_with(**{"entry_point: tiny.py:model": "path: model.pkl"})
    exp = write(bad_folder, "ok.yaml", text)
    result = runner.invoke(app, ["run", str(exp), "--store", store_url, "--allow-pickle", "-q"])
    assert result.exit_code == 0, result.stderr
    assert len(runs_in(store_url)) == 1


def test_unreachable_store_option(runner, tiny):
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    for url in ("sqlite:////nonexistent-folder/x.db", "nosuchdb://host/db"):
        _assert_bad(runner.invoke(app, ["run", str(exp), "--store", url]))
        _assert_bad(runner.invoke(app, ["runs", "--store", url]))


def test_missing_experiment_file(runner, tmp_path, store_url):
    _assert_bad(
        runner.invoke(app, ["run", str(tmp_path / "nope.yaml"), "--store", store_url]),
        "nope.yaml",
        "does not exist",
    )


def test_unreadable_experiment_file(runner, tmp_path, store_url):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    _assert_bad(runner.invoke(app, ["run", str(path), "--store", store_url]), "binary.yaml")


def test_unknown_run(runner, store_url):
    _assert_bad(runner.invoke(app, ["show", "abc123", "--store", store_url]), "abc123")
    _assert_bad(
        runner.invoke(app, ["report", "abc123", "-o", "x.html", "--store", store_url]), "abc123"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--bogus"],
        ["run"],
        ["nosuchcommand"],
        ["calc", "drop", "--p", "notanumber", "--epsilon", "0.1", "--sensitivity", "1"],
    ],
)
def test_usage_errors_through_main_are_one_line(capsys, argv):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err


def test_real_process_exit_code_and_no_traceback(tiny, store_url):
    """The installed console script, as a user runs it."""
    exp = write(tiny, "bad.yaml", _tiny_with(**{"[0, 0.1, 0.5]": "[-0.1, 0.1, 0.5]"}))
    proc = subprocess.run(
        [str(PERTURBKIT), "run", str(exp), "--store", store_url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "perturbations[1].magnitudes[0]" in proc.stderr
    assert proc.stdout == ""
    assert runs_in(store_url).empty


def test_real_ctrl_c_then_resume(runner, tiny, store_url):
    """SIGINT to the real process: exit 130, an interrupted run, resumable to completion."""
    exp = write(tiny, "tiny.yaml", TINY_EXPERIMENT)
    proc = subprocess.Popen(
        [str(PERTURBKIT), "run", str(exp), "--store", store_url, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PK_TEST_SLEEP": "0.25"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                runs = runs_in(store_url)
            except pk.StoreError:  # the process is still creating the database
                runs = None
            if runs is not None and len(runs) and runs["n_cells"].iloc[0] >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    runs = runs_in(store_url)
    assert list(runs["status"]) == ["interrupted"] and 6 <= runs["n_cells"].iloc[0] < 14
    result = runner.invoke(app, ["run", str(exp), "--store", store_url, "--resume", "--json"])
    assert result.exit_code == 0, result.stderr
    runs = runs_in(store_url)
    assert list(runs["status"]) == ["complete"] and runs["n_cells"].iloc[0] == 14


def test_skops_untrusted_type_needs_trust(runner, tiny, store_url):
    sio = pytest.importorskip("skops.io")
    from sklearn.tree import DecisionTreeClassifier

    data = np.load(tiny / "tiny.npz")
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data["X"], data["y"])
    sio.dump(tree, tiny / "tree.skops")
    exp = write(tiny, "tree.yaml", _tiny_with(**{"entry_point: tiny.py:model": "path: tree.skops"}))
    _assert_bad(
        runner.invoke(app, ["run", str(exp), "--store", store_url]),
        "model.path",
        "sklearn.tree._tree.Tree",
        "--trust",
    )
    assert runs_in(store_url).empty
    ok = runner.invoke(
        app, ["run", str(exp), "--store", store_url, "--trust", "sklearn.tree._tree.Tree", "-q"]
    )
    assert ok.exit_code == 0, ok.stderr
    assert len(runs_in(store_url)) == 1


def test_model_failing_mid_sweep_keeps_a_failed_run_of_whole_cells(runner, tiny, store_url):
    # missing_values with fill=nan feeds NaN to a model that cannot take it
    exp = write(tiny, "nan.yaml", _tiny_with(**{"{fill: mean}": "{fill: nan}"}))
    line = _assert_bad(runner.invoke(app, ["run", str(exp), "--store", store_url]), "kept in")
    runs = runs_in(store_url)
    assert list(runs["status"]) == ["failed"] and runs["run_id"].iloc[0] in line
    assert f"with its {runs['n_cells'].iloc[0]} finished cells" in line
    run = pk.load_run(runs["run_id"].iloc[0], store_url)
    # every stored cell is whole: all its metrics are there
    per_cell = run.table[run.table["group"] == ""].groupby(["params", "magnitude", "repeat"])
    assert per_cell["metric"].nunique().nunique() == 1
