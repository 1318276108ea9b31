"""examples/robustness_curves.py: real data sets, one figure, reproducible by one command."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import sklearn.datasets  # noqa: F401 - first import touches Python's global random

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "robustness_curves.py"


@pytest.mark.slow
def test_example_writes_figure_table_and_summary(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("statsmodels")
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--out", str(tmp_path)])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert (tmp_path / "robustness_curves.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "robustness_curves.json").read_text())
    assert set(summary) == {"diabetes", "star98", "grunfeld", "fair"}
    for s in summary.values():
        assert 0 < s["clean_r2"] < 1 and s["auc_mse_upper_normalized"] > 0
    first = (tmp_path / "robustness_curves.csv").read_text()
    runpy.run_path(str(EXAMPLE), run_name="__main__")  # same seed, same numbers
    assert (tmp_path / "robustness_curves.csv").read_text() == first
