"""Shared pieces of the CLI tests: a tiny model, an experiment, store helpers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import perturbkit as pk

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# A logistic model on 5 features, as a plain function: fast, deterministic, and able
# to simulate Ctrl-C (PK_TEST_INTERRUPT_AT=n raises KeyboardInterrupt at the n-th call)
# or to be slow (PK_TEST_SLEEP=seconds per call).
TINY_MODEL = """
import os
import time

import numpy as np

CALLS = {"n": 0}
W = np.array([1.5, -1.0, 0.5, 2.0, -0.5])


def model(X):
    CALLS["n"] += 1
    at = os.environ.get("PK_TEST_INTERRUPT_AT")
    if at and CALLS["n"] >= int(at):
        raise KeyboardInterrupt
    time.sleep(float(os.environ.get("PK_TEST_SLEEP", "0")))
    p = 1.0 / (1.0 + np.exp(-(X @ W)))
    return np.stack([1.0 - p, p], axis=1)
"""


def runs_in(url: str):
    with pk.Store(url) as st:
        return st.list_runs()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


TINY_EXPERIMENT = """
name: tiny
model:
  entry_point: tiny.py:model
  task: classification
data:
  path: tiny.npz
perturbations:
  - name: gaussian_noise
    magnitudes: [0, 0.1, 0.3, 1.0]
  - name: missing_values
    params: {fill: mean}
    magnitudes: [0, 0.1, 0.5]
repeats: 2
seed: 7
"""
