"""Fixtures for the CLI tests: a runner, a temporary store, a tiny model and data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _cli_helpers import TINY_MODEL
from typer.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A folder with tiny.py (TINY_MODEL) and tiny.npz (X 300x5, y)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = (X @ np.array([1.5, -1.0, 0.5, 2.0, -0.5]) > 0).astype(np.int64)
    np.savez(tmp_path / "tiny.npz", X=X, y=y)
    (tmp_path / "tiny.py").write_text(TINY_MODEL)
    return tmp_path
