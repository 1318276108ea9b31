"""load_data: files, bundled real data sets, row selection, one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets  # noqa: F401 - its first import touches Python's global random (rich)

import perturbkit as pk
from perturbkit.data import DATASETS, DataInfo, load_data


@pytest.mark.parametrize(
    ("name", "shape", "task", "first"),
    [
        ("breast_cancer", (569, 30), "classification", "mean radius"),
        ("digits", (1797, 64), "classification", "pixel_0_0"),
        ("diabetes", (442, 10), "regression", "age"),
        ("iris", (150, 4), "classification", "sepal length (cm)"),
        ("wine", (178, 13), "classification", "alcohol"),
    ],
)
def test_bundled_datasets_are_frames_with_feature_names(name, shape, task, first):
    X, y, info = load_data(name)
    assert isinstance(X, pd.DataFrame) and X.shape == shape
    assert X.columns[0] == first and info.feature_names == list(X.columns)
    assert y.shape == (shape[0],) and info.target == "target"
    assert info.task == task == DATASETS[name][1]
    assert info.source == f"sklearn:{name}" and info.format == "dataset"
    assert np.isfinite(X.to_numpy()).all()


def test_bundled_dataset_labels_are_the_real_ones():
    from sklearn.datasets import load_breast_cancer

    X, y, _ = load_data("breast_cancer")
    Xr, yr = load_breast_cancer(return_X_y=True)
    np.testing.assert_array_equal(X.to_numpy(), Xr)
    np.testing.assert_array_equal(y, yr)


def test_bundled_dataset_refuses_another_target():
    with pytest.raises(pk.ParameterError, match="labels built in"):
        load_data("iris", target="species")


def test_csv_with_and_without_target(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6], "label": ["x", "y", "x"]}).to_csv(
        path, index=False
    )
    X, y, info = load_data(path, target="label")
    assert list(X.columns) == ["a", "b"] and y.tolist() == ["x", "y", "x"]
    assert info.format == "csv" and info.target == "label" and info.n_features == 2
    X2, y2, info2 = load_data(path)
    assert y2 is None and X2.shape == (3, 3) and info2.target is None
    assert "no labels" in info2.summary()


def test_tsv(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("a\tb\ty\n1\t2\t0\n3\t4\t1\n")
    X, y, _ = load_data(path, target="y")
    assert X.shape == (2, 2) and y.tolist() == [0, 1]


def test_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    frame = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0) ** 2, "t": [0, 1, 0, 1, 1]})
    frame.to_parquet(path)
    X, y, info = load_data(path, target="t")
    assert info.format == "parquet" and X.shape == (5, 2) and y.tolist() == [0, 1, 0, 1, 1]


def test_npy_and_npz(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([0, 1, 1, 0])
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "d.npz", X=X, y=y, other=y * 2)
    Xa, ya, info = load_data(tmp_path / "x.npy")
    np.testing.assert_array_equal(Xa, X)
    assert ya is None and info.format == "npy" and info.feature_names is None
    Xb, yb, info = load_data(tmp_path / "d.npz")
    np.testing.assert_array_equal(Xb, X)
    assert yb.tolist() == y.tolist() and info.target == "y"
    _, yc, info = load_data(tmp_path / "d.npz", target="other")
    assert yc.tolist() == (y * 2).tolist() and info.target == "other"


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


def test_errors_are_one_line(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("alpha,beta,label\n1,2,0\n")
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path / "missing.csv")
    _one_line(exc, "missing.csv", "does not exist")
    with pytest.raises(pk.DataError) as exc:
        load_data(csv, target="lable")
    _one_line(exc, "'lable'", "Did you mean 'label'?", "alpha")
    with pytest.raises(pk.DataError) as exc:
        load_data("breast_cancr")
    _one_line(exc, "Did you mean 'breast_cancer'?")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path / "empty.csv")
    _one_line(exc, "empty")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path / "bad.parquet")
    _one_line(exc, "could not be read")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path / "bad.npy")
    _one_line(exc, "could not be read")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path / "obj.npy")
    _one_line(exc, "pickle")
    np.savez(tmp_path / "nox.npz", features=np.zeros((2, 2)))
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path / "nox.npz")
    _one_line(exc, "'X'", "features")
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path)
    _one_line(exc, "folder")
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(pk.DataError) as exc:
        load_data(tmp_path / "d.xlsx")
    _one_line(exc, "unknown suffix", ".xlsx")
    with pytest.raises(pk.ParameterError) as exc:
        load_data(tmp_path / "obj.npy", target="y")
    _one_line(exc, ".npz")
    with pytest.raises(pk.ParameterError) as exc:
        load_data("iris", limit=0)
    _one_line(exc, "'limit'", "Got 0 instead.")
    with pytest.raises(pk.ParameterError):
        load_data("iris", limit=5, sample=5)


def test_nan_is_left_for_the_sweep_to_refuse(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,,0\n3,4,1\n")
    X, y, _ = load_data(path, target="y")
    assert np.isnan(X.to_numpy()).sum() == 1
    with pytest.raises(pk.DataError, match="X must be finite"):
        pk.sweep(
            lambda Z: np.ones((len(Z), 1)),
            X,
            y,
            perturbations=["gaussian_noise"],
            magnitudes=[0.1],
            progress=False,
            task="regression",
        )


def test_limit_and_sample():
    X, y, info = load_data("breast_cancer", limit=50)
    assert X.shape == (50, 30) and y.shape == (50,) and info.n_rows == 50
    assert info.n_rows_total == 569 and "of 569" in info.summary()
    Xs, ys, info = load_data("breast_cancer", sample=100, seed=3)
    Xs2, _, _ = load_data("breast_cancer", sample=100, seed=3)
    Xs3, _, _ = load_data("breast_cancer", sample=100, seed=4)
    pd.testing.assert_frame_equal(Xs, Xs2)
    assert not Xs.equals(Xs3)
    assert Xs.shape == (100, 30) and info.n_rows == 100
    full, yfull, _ = load_data("breast_cancer")
    # the rows are real rows, in their original order, with their own labels
    idx = [int(np.flatnonzero((full.to_numpy() == row).all(axis=1))[0]) for row in Xs.to_numpy()]
    assert idx == sorted(idx) and len(set(idx)) == 100
    np.testing.assert_array_equal(yfull[idx], ys)
    Xbig, _, _ = load_data("iris", limit=10_000)
    assert Xbig.shape == (150, 4)


def test_features_selection():
    X, _, info = load_data("iris", features=["petal width (cm)", "sepal length (cm)"])
    assert list(X.columns) == ["petal width (cm)", "sepal length (cm)"]
    assert info.n_features == 2
    with pytest.raises(pk.DataError, match="Did you mean 'petal width \\(cm\\)'"):
        load_data("iris", features=["petal width"])


def test_info_to_dict():
    _, _, info = load_data("wine", limit=3)
    d = info.to_dict()
    assert d["n_rows"] == 3 and d["task"] == "classification"
    assert DataInfo(**d) == info
