"""wrap() dispatch and lazy optional imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from perturbkit.exceptions import MissingExtraError
from perturbkit.models import load_model, wrap
from perturbkit.models.callable import CallableModel
from perturbkit.models.sklearn import SklearnModel


def test_sklearn_and_callables_never_import_the_heavy_extras():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from sklearn.linear_model import Ridge
        import perturbkit
        from perturbkit.models import wrap
        X = np.arange(20.0).reshape(10, 2)
        wrap(Ridge().fit(X, X[:, 0]))(X)
        wrap(lambda X: X[:, 0])(X)
        loaded = {m.split(".")[0] for m in sys.modules}
        heavy = sorted(loaded & {"torch", "onnxruntime", "onnx", "skops"})
        print(",".join(heavy))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""


def test_dispatch(cancer_pipeline):
    assert isinstance(wrap(cancer_pipeline), SklearnModel)
    assert isinstance(wrap(len, task="regression"), CallableModel)

    class DuckRegressor:  # not a scikit-learn class, but its API
        def predict(self, X):
            return X.sum(axis=1)

    model = wrap(DuckRegressor())
    assert isinstance(model, SklearnModel) and model.task == "regression"


def test_missing_extra_names_the_pip_extra(tmp_path, monkeypatch):
    path = tmp_path / "m.skops"
    path.write_bytes(b"PK")
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'perturbkit\[skops\]'"):
        load_model(path)
