"""The optim examples run (a quick smoke run here; the full runs with --runslow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(script: str, out: Path, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_training_study_quick(tmp_path):
    out = run("training_study.py", tmp_path, "--quick")
    assert "Perturbed SGD" in out and "SGLD (posterior mean)" in out
    assert (tmp_path / "loss_curves.png").stat().st_size > 10_000
    data = json.loads((tmp_path / "training_study.json").read_text())
    assert set(data["accuracy"]) == {
        "SGD",
        "Adam",
        "Perturbed SGD",
        "SGLD",
        "SGLD (posterior mean)",
        "SAM",
    }


def test_train_against_fragility_quick(tmp_path):
    out = run("train_against_fragility.py", tmp_path, "--quick")
    assert "<- the fragility" in out and "paired gain" in out
    data = json.loads((tmp_path / "train_against_fragility.json").read_text())
    assert data["target"] in data["drops_before"]
    assert len(data["plain"]) == len(data["augmented"]) == 2


@pytest.mark.slow
def test_full_examples_run_in_under_two_minutes_each(tmp_path):
    for script in ("training_study.py", "train_against_fragility.py"):
        out = run(script, tmp_path / script)
        assert "wrote" in out
