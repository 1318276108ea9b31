"""``load_data(spec)``: tabular data from a file or a bundled real data set.

What ``spec`` may be:

- a CSV (``.csv``, ``.csv.gz``, ``.tsv``) or Parquet (``.parquet``, ``.pq``)
  file; ``target=`` names the label column (without it the data is unlabeled
  and a sweep computes only label-free metrics);
- a NumPy ``.npy`` file (features only) or ``.npz`` archive with arrays ``X``
  and, optionally, ``y`` (``target=`` names another key for the labels);
- the name of a real data set bundled with scikit-learn:
  ``breast_cancer``, ``digits``, ``diabetes``, ``iris`` or ``wine``, returned
  as a DataFrame with feature names and the labels in ``y``.

``limit=n`` keeps the first ``n`` rows; ``sample=n`` keeps ``n`` rows drawn at
random without replacement (in their original order) from a generator seeded
with ``seed``. Every problem (a missing or unreadable file, a missing target
column, an unknown data set) is one line in a :class:`~perturbkit.DataError`.
Non-finite values are left in place: the sweep refuses them and names the
first one.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perturbkit.exceptions import DataError, ParameterError

__all__ = ["DATASETS", "DataInfo", "load_data"]

#: Bundled real data sets: name -> (scikit-learn loader, task, one-line description).
DATASETS: dict[str, tuple[str, str, str]] = {
    "breast_cancer": (
        "load_breast_cancer",
        "classification",
        "Wisconsin breast cancer: 569 tumours, 30 features, malignant (0) or benign (1)",
    ),
    "digits": (
        "load_digits",
        "classification",
        "handwritten digits: 1,797 8x8 images as 64 pixel intensities 0-16, classes 0-9",
    ),
    "diabetes": (
        "load_diabetes",
        "regression",
        "diabetes progression: 442 patients, 10 standardised features, a disease score",
    ),
    "iris": ("load_iris", "classification", "iris flowers: 150 plants, 4 measurements, 3 species"),
    "wine": (
        "load_wine",
        "classification",
        "wine: 178 wines, 13 chemical measurements, 3 cultivars",
    ),
}

_CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zip", ".csv.bz2", ".csv.xz")
_PARQUET = (".parquet", ".pq")
_NPY = (".npy",)
_NPZ = (".npz",)
SUFFIXES: tuple[str, ...] = _CSV + _PARQUET + _NPY + _NPZ


@dataclass(frozen=True)
class DataInfo:
    """Where the data came from and its shape.

    Attributes:
        source: the file path, or ``"sklearn:<name>"`` for a bundled data set.
        format: ``"csv"``, ``"parquet"``, ``"npy"``, ``"npz"`` or ``"dataset"``.
        n_rows: rows kept (after ``limit``/``sample``).
        n_rows_total: rows in the source.
        n_features: feature columns.
        feature_names: column names, or None for unnamed arrays.
        target: the label column (or npz key), or None when unlabeled.
        task: ``"classification"`` or ``"regression"`` for a bundled data set, else None.
        description: a line about a bundled data set, else None.
    """

    source: str
    format: str
    n_rows: int
    n_rows_total: int
    n_features: int
    feature_names: list[str] | None
    target: str | None
    task: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One human line: source, shape and labels."""
        rows = f"{self.n_rows:,} rows"
        if self.n_rows != self.n_rows_total:
            rows += f" (of {self.n_rows_total:,})"
        labels = f"labels from '{self.target}'" if self.target else "no labels"
        return f"{self.source}: {rows} x {self.n_features} features, {labels}"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    return path.suffix.lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[0].split()) if text else type(exc).__name__


def _check_count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(
            f"The '{name}' parameter of load_data must be an int >= 1 or None. "
            f"Got {value!r} instead."
        )
    return int(value)


def load_data(
    spec: str | os.PathLike[str],
    *,
    target: str | None = None,
    features: list[str] | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame | np.ndarray, np.ndarray | None, DataInfo]:
    """Load ``(X, y, info)`` from a file or a bundled data set; see the module docstring.

    Args:
        spec: a ``.csv``/``.parquet``/``.npy``/``.npz`` path, or a bundled
            data set name (``breast_cancer``, ``digits``, ``diabetes``, ``iris``, ``wine``).
        target: the label column of a CSV/Parquet file, or the label key of an
            ``.npz`` archive (default ``"y"`` when present). None for a CSV or
            Parquet file means unlabeled data.
        features: keep only these columns (CSV, Parquet and bundled data sets).
        limit: keep the first ``limit`` rows.
        sample: keep ``sample`` rows drawn without replacement (seeded by ``seed``).
        seed: the seed of ``sample``'s draw.

    Returns:
        ``X`` (a DataFrame with feature names, or an ndarray for ``.npy``/``.npz``),
        ``y`` (an ndarray, or None when unlabeled) and a :class:`DataInfo`.

    Example:
        >>> X, y, info = load_data("iris", limit=10)
        >>> X.shape, info.task
        ((10, 4), 'classification')
    """
    limit = _check_count("limit", limit)
    sample = _check_count("sample", sample)
    if limit is not None and sample is not None:
        raise ParameterError(
            "load_data takes 'limit' or 'sample', not both. "
            f"Got limit={limit} and sample={sample} instead."
        )
    text = os.fspath(spec)
    path = Path(text)
    if text in DATASETS and not path.exists():
        X, y, info = _load_dataset(text, target)
    else:
        X, y, info = _load_file(text, path, target)
    if features is not None:
        X = _select(X, list(features), info.source)
        info = _replace(info, n_features=X.shape[1], feature_names=[str(c) for c in X.columns])
    n = X.shape[0]
    if n == 0:
        raise DataError(f"Data '{info.source}' has no rows.")
    keep: np.ndarray | slice | None = None
    if limit is not None and limit < n:
        keep = slice(0, limit)
    elif sample is not None and sample < n:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(n, size=sample, replace=False))
    if keep is not None:
        X = X.iloc[keep].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[keep]
        y = None if y is None else y[keep]
        info = _replace(info, n_rows=int(X.shape[0]))
    return X, y, info


def _replace(info: DataInfo, **changes: Any) -> DataInfo:
    d = info.to_dict()
    d.update(changes)
    return DataInfo(**d)


def _select(X: Any, features: list[str], source: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ParameterError(
            f"'features' selects columns by name, but '{source}' holds an unnamed array; "
            "drop 'features' or save the data as CSV/Parquet."
        )
    missing = [f for f in features if f not in X.columns]
    if missing:
        raise DataError(
            f"Feature column {missing[0]!r} is not in '{source}'. {_columns_hint(missing[0], X)}"
        )
    if not features:
        raise ParameterError("'features' must name at least one column. Got [] instead.")
    return X[features]


def _columns_hint(name: str, frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(str(name), cols, n=1)
    hint = f"Did you mean '{close[0]}'? " if close else ""
    shown = ", ".join(cols[:12]) + (f" (and {len(cols) - 12} more)" if len(cols) > 12 else "")
    return f"{hint}Its columns: {shown}."


def _load_dataset(name: str, target: str | None) -> tuple[pd.DataFrame, np.ndarray, DataInfo]:
    import sklearn.datasets

    loader, task, description = DATASETS[name]
    if target not in (None, "target"):
        raise ParameterError(
            f"The bundled data set '{name}' has its labels built in; drop 'target' "
            f"(or set it to 'target'). Got {target!r} instead."
        )
    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    X = bunch.data.reset_index(drop=True)
    X.columns = [str(c) for c in X.columns]
    y = np.asarray(bunch.target)
    info = DataInfo(
        source=f"sklearn:{name}",
        format="dataset",
        n_rows=int(X.shape[0]),
        n_rows_total=int(X.shape[0]),
        n_features=int(X.shape[1]),
        feature_names=list(X.columns),
        target="target",
        task=task,
        description=description,
    )
    return X, y, info


def _unknown(text: str) -> DataError:
    close = difflib.get_close_matches(text, list(DATASETS), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return DataError(
        f"Data '{text}' is neither an existing file nor a bundled data set.{hint} "
        f"Bundled: {', '.join(DATASETS)}; files: .csv, .parquet, .npy, .npz."
    )


def _load_file(
    text: str, path: Path, target: str | None
) -> tuple[pd.DataFrame | np.ndarray, np.ndarray | None, DataInfo]:
    suffix = _suffix(path)
    if not path.exists():
        if suffix in SUFFIXES:
            raise DataError(f"Data file '{text}' does not exist.")
        raise _unknown(text)
    if path.is_dir():
        raise DataError(
            f"Data path '{text}' is a folder; expected a .csv, .parquet, .npy or .npz file."
        )
    if suffix not in SUFFIXES:
        raise DataError(
            f"Data file '{text}' has an unknown suffix '{path.suffix}'; expected one of "
            ".csv, .tsv, .parquet, .npy, .npz."
        )
    if suffix in _NPY or suffix in _NPZ:
        return _load_numpy(text, path, suffix, target)
    frame = _read_frame(text, path, suffix)
    y = None
    if target is not None:
        if target not in frame.columns:
            raise DataError(
                f"Target column '{target}' is not in '{text}'. {_columns_hint(target, frame)}"
            )
        y = frame[target].to_numpy()
        frame = frame.drop(columns=[target])
    frame.columns = [str(c) for c in frame.columns]
    if frame.shape[1] == 0:
        raise DataError(f"Data file '{text}' has no feature columns besides the target.")
    fmt = "parquet" if suffix in _PARQUET else "csv"
    info = DataInfo(
        source=text,
        format=fmt,
        n_rows=int(frame.shape[0]),
        n_rows_total=int(frame.shape[0]),
        n_features=int(frame.shape[1]),
        feature_names=list(frame.columns),
        target=target,
    )
    return frame, y, info


def _read_frame(text: str, path: Path, suffix: str) -> pd.DataFrame:
    try:
        if suffix in _PARQUET:
            from perturbkit._extras import require

            require("pyarrow", feature="Reading Parquet files")
            return pd.read_parquet(path)
        sep = "\t" if suffix.startswith(".tsv") else ","
        return pd.read_csv(path, sep=sep)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"Data file '{text}' is empty.") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        what = "Parquet" if suffix in _PARQUET else "CSV"
        raise DataError(
            f"Data file '{text}' could not be read as {what}: {_first_line(exc)[:200]}"
        ) from exc
    except Exception as exc:  # pyarrow's own errors are not OSError/ValueError
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(
                f"Data file '{text}' could not be read as Parquet: {_first_line(exc)[:200]}"
            ) from exc
        raise


def _load_numpy(
    text: str, path: Path, suffix: str, target: str | None
) -> tuple[np.ndarray, np.ndarray | None, DataInfo]:
    if suffix in _NPY and target is not None:
        raise ParameterError(
            f"A .npy file holds features only, so 'target' cannot be used with '{text}'; "
            f"save X and y together in an .npz archive. Got target={target!r}."
        )
    magic = b"\x93NUMPY" if suffix in _NPY else b"PK"
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(magic))
    except OSError as exc:
        raise DataError(f"Data file '{text}' could not be read: {_first_line(exc)[:200]}") from exc
    if head != magic:
        what = "a NumPy .npy file" if suffix in _NPY else "a NumPy .npz archive"
        raise DataError(f"Data file '{text}' could not be read: it is not {what}.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"Data file '{text}' holds Python objects, which load only with pickle; "
                "save plain numeric arrays instead."
            ) from exc
        raise DataError(f"Data file '{text}' could not be read: {_first_line(exc)[:200]}") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"Data file '{text}' could not be read: {_first_line(exc)[:200]}") from exc
    y = None
    if suffix in _NPY:
        if not isinstance(loaded, np.ndarray):  # pragma: no cover - np.load of .npy
            raise DataError(f"Data file '{text}' does not hold one array.")
        X = loaded
        label = None
    else:
        with loaded as archive:
            keys = list(archive.files)
            if "X" not in keys:
                raise DataError(
                    f"Data file '{text}' must hold an array named 'X'. Got keys {keys} instead."
                )
            label = target if target is not None else ("y" if "y" in keys else None)
            if label is not None and label not in keys:
                raise DataError(
                    f"Data file '{text}' has no array named {label!r} for the labels. "
                    f"Got keys {keys} instead."
                )
            try:
                X = archive["X"]
                y = None if label is None else archive[label]
            except ValueError as exc:
                raise DataError(
                    f"Data file '{text}' holds Python objects, which load only with pickle; "
                    "save plain numeric arrays instead."
                ) from exc
    if X.ndim == 0:
        raise DataError(f"Data file '{text}' holds a scalar; expected a (rows x features) array.")
    info = DataInfo(
        source=text,
        format=suffix.lstrip("."),
        n_rows=int(X.shape[0]),
        n_rows_total=int(X.shape[0]),
        n_features=int(np.prod(X.shape[1:])) if X.ndim > 1 else 1,
        feature_names=None,
        target=label,
    )
    return X, y, info
