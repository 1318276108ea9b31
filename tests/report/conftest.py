"""Real sweeps for the report tests: small grids, fixed seeds, fast."""

from __future__ import annotations

import json

import pytest

import perturbkit as pk


@pytest.fixture(scope="session")
def cls_result(cancer_model, breast_cancer):
    """Classification with labels, three perturbations, two repeats."""
    X, y = breast_cancer
    return pk.sweep(
        cancer_model,
        X,
        y,
        perturbations=["gaussian_noise", "sensor_drift", "outliers"],
        magnitudes=[0, 0.1, 0.3, 1.0],
        repeats=2,
        seed=0,
        progress=False,
        name="breast cancer",
    )


@pytest.fixture(scope="session")
def unlabeled_result(cancer_model, breast_cancer):
    """Classification without labels, one repeat."""
    X, _ = breast_cancer
    return pk.sweep(
        cancer_model,
        X,
        perturbations=["gaussian_noise", "sensor_drift"],
        magnitudes=[0, 0.1, 0.5],
        repeats=1,
        seed=1,
        progress=False,
        name="no labels",
    )


@pytest.fixture(scope="session")
def reg_result(diabetes_linear, diabetes):
    """Regression with labels, two repeats."""
    X, y = diabetes
    return pk.sweep(
        diabetes_linear,
        X,
        y,
        perturbations=["gaussian_noise", "sensor_drift"],
        magnitudes=[0, 0.1, 0.3, 1.0],
        repeats=2,
        seed=2,
        progress=False,
        name="diabetes",
    )


@pytest.fixture(scope="session")
def reg_unlabeled_result(diabetes_linear, diabetes):
    """Regression without labels, one repeat."""
    X, _ = diabetes
    return pk.sweep(
        diabetes_linear,
        X,
        perturbations=["gaussian_noise"],
        magnitudes=[0, 0.2, 1.0],
        repeats=1,
        seed=3,
        progress=False,
    )


@pytest.fixture(scope="session")
def mixed_result(cancer_model, breast_cancer):
    """Magnitudes that differ per perturbation."""
    X, y = breast_cancer
    return pk.sweep(
        cancer_model,
        X,
        y,
        perturbations=["gaussian_noise", "sensor_drift"],
        magnitudes={"gaussian_noise": [0, 0.1, 0.5], "sensor_drift": [0, 0.2, 1.0]},
        repeats=2,
        seed=4,
        progress=False,
    )


EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="session")
def evil_result(cls_result):
    """The classification run with hostile user strings in its name and parameters."""
    t = cls_result.table.copy()
    evil_params = json.dumps({"columns": f"{EVIL} $x$ http://cdn.evil.example/a.js"})
    t.loc[t["perturbation"] == "gaussian_noise", "params"] = evil_params
    meta = json.loads(json.dumps(cls_result.meta))
    meta["name"] = EVIL
    meta["model"]["description"] = "Model<img src=x onerror=alert(2)> //cdn.evil"
    meta["perturbations"][0]["params"] = json.loads(evil_params)
    return pk.SweepResult(t, meta)
