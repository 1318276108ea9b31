"""Clean-vs-perturbed metrics, accumulated in streaming fashion.

A sweep never holds the outputs of a cell: it adds per-block sufficient
statistics (sums, counts, confusion matrices, calibration bins) to an
accumulator and turns them into metric rows at the end. Sums are taken per
fixed logical block of rows and added in block order, so a metric does not
depend on the compute batch size (bit for bit, given equal model outputs).

Metric names are lower-case snake case; ``group`` qualifies per-class or
per-output rows (``"class=3"``, ``"3->8"``, ``"output=1"``) and is ``""``
for the global rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perturbkit.exceptions import ParameterError

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "ClassificationStats",
    "RegressionStats",
    "available_metrics",
    "check_metrics",
]

_EPS = 1e-15

CLASSIFICATION_METRICS: dict[str, str] = {
    "accuracy": "fraction of rows whose perturbed prediction equals the label",
    "accuracy_drop": "clean accuracy minus perturbed accuracy (positive = worse)",
    "flip_rate": "fraction of rows whose predicted class differs from the clean prediction",
    "confidence_drop": "mean fall of the probability of the clean-predicted class",
    "tv_distance": "mean total-variation distance between clean and perturbed probabilities",
    "js_distance": "mean Jensen-Shannon distance (base 2, in [0, 1]), clean vs perturbed",
    "class_shift": "total-variation distance of the predicted-class distribution from clean",
    "entropy": "mean predictive entropy (nats) under perturbation",
    "entropy_increase": "perturbed minus clean mean predictive entropy",
    "ece": "expected calibration error (equal-width confidence bins) under perturbation",
    "ece_increase": "perturbed minus clean expected calibration error",
    "log_loss": "mean negative log-probability of the label under perturbation",
    "log_loss_increase": "perturbed minus clean log loss",
    "brier": "mean squared error of the probability vector against the one-hot label",
    "brier_increase": "perturbed minus clean Brier score",
    "predicted_share": "share of rows predicted as each class (group class=c)",
    "flip_rate_by_class": "flip rate among rows of each clean-predicted class (group class=c)",
    "recall": "per-class recall under perturbation (group class=c)",
    "recall_drop": "per-class clean recall minus perturbed recall (group class=c)",
    "transition_increase": "growth of error mode true->predicted, fraction of rows (group a->b)",
}
_CLS_NEEDS_LABELS = {
    "accuracy",
    "accuracy_drop",
    "ece",
    "ece_increase",
    "log_loss",
    "log_loss_increase",
    "brier",
    "brier_increase",
    "recall",
    "recall_drop",
    "transition_increase",
}

REGRESSION_METRICS: dict[str, str] = {
    "mse": "mean squared error against the label under perturbation",
    "rmse": "root mean squared error under perturbation",
    "mae": "mean absolute error under perturbation",
    "mse_increase": "perturbed minus clean MSE",
    "rmse_increase": "perturbed minus clean RMSE",
    "mae_increase": "perturbed minus clean MAE",
    "deviation": "mean squared output deviation (f(x+d) - f(x))^2, label-free",
    "bias": "mean signed output shift f(x+d) - f(x), label-free",
}
_REG_NEEDS_LABELS = {"mse", "rmse", "mae", "mse_increase", "rmse_increase", "mae_increase"}


def available_metrics(task: str, *, has_labels: bool) -> list[str]:
    """Metric names a sweep produces for ``task`` with or without labels."""
    if task == "classification":
        return [m for m in CLASSIFICATION_METRICS if has_labels or m not in _CLS_NEEDS_LABELS]
    return [m for m in REGRESSION_METRICS if has_labels or m not in _REG_NEEDS_LABELS]


def check_metrics(metrics: Iterable[str] | None, task: str, *, has_labels: bool) -> list[str]:
    """Validate a user's metric selection against the task; None selects all."""
    allowed = available_metrics(task, has_labels=has_labels)
    if metrics is None:
        return allowed
    if isinstance(metrics, str):
        metrics = [metrics]
    chosen = list(metrics)
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    for m in chosen:
        if m not in allowed:
            import difflib

            if m in known:
                why = f"Metric '{m}' needs labels: pass y."
            else:
                close = difflib.get_close_matches(str(m), list(known), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                why = f"Unknown {task} metric '{m}'.{hint}"
            raise ParameterError(f"{why} Allowed: {', '.join(allowed)}.")
    return chosen


def _entropy(P: np.ndarray) -> np.ndarray:
    """Row entropies (nats) of probability rows, with 0 log 0 = 0.

    Row sums use einsum, not ``@ ones``: a BLAS call on a thin matrix pays the
    BLAS thread pool's wake-up on every batch.
    """
    return -np.einsum("ij,ij->i", P, np.log(np.maximum(P, _EPS)))


def _block_sums(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of ``rows`` (n, s) over the blocks that begin at ``starts``: (n_blocks, s)."""
    return np.add.reduceat(rows, starts, axis=0)


@dataclass
class _Rows:
    metric: str
    group: str
    value: float


def _class_name(classes: Sequence[Any] | None, i: int) -> str:
    if classes is None:
        return str(i)
    c = classes[i]
    return str(c.item() if hasattr(c, "item") else c)


class ClassificationStats:
    """Sufficient statistics of one cell of a classification sweep.

    ``update`` takes clean probabilities ``P0``, perturbed ``P`` (both
    ``(n, k)``), label indices ``y`` (or None) and the offsets of the logical
    blocks inside the batch.
    """

    _FIELDS = ("correct", "flip", "conf_drop", "tv", "js", "entropy", "nll", "brier")

    def __init__(self, n_classes: int, *, has_labels: bool, n_bins: int = 15) -> None:
        self.k = n_classes
        self.has_labels = has_labels
        self.n_bins = n_bins
        self.n = 0
        self.sums = np.zeros(len(self._FIELDS))
        self.pred_counts = np.zeros(n_classes, dtype=np.int64)
        self.clean_pred_counts = np.zeros(n_classes, dtype=np.int64)
        self.flips_by_class = np.zeros(n_classes, dtype=np.int64)
        self.confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
        self.bin_count = np.zeros(n_bins, dtype=np.int64)
        self.bin_conf = np.zeros(n_bins)
        self.bin_correct = np.zeros(n_bins, dtype=np.int64)

    @staticmethod
    def clean_aux(P0: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
        """Per-chunk quantities of the clean outputs, computed once and shared by all cells."""
        n = P0.shape[0]
        pred0 = P0.argmax(axis=1)
        return {
            "pred0": pred0,
            "conf0": P0[np.arange(n), pred0],
            "h0": _entropy(P0),
            "block_id": np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n))),
        }

    def update(
        self,
        P0: np.ndarray,
        P: np.ndarray,
        y: np.ndarray | None,
        starts: np.ndarray,
        aux: dict[str, np.ndarray] | None = None,
    ) -> None:
        n, k = P.shape
        if aux is None:
            aux = self.clean_aux(P0, starts)
        pred = P.argmax(axis=1)
        pred0 = aux["pred0"]
        rows = np.arange(n)
        conf = P[rows, pred]
        flip = pred != pred0
        logP = np.log(np.maximum(P, _EPS))
        h = -np.einsum("ij,ij->i", P, logP)
        M = P + P0
        M *= 0.5
        hM = -np.einsum("ij,ij->i", M, np.log(np.maximum(M, _EPS)))
        stats = np.empty((len(self._FIELDS), n))
        stats[1] = flip
        np.subtract(aux["conf0"], P[rows, pred0], out=stats[2])
        D = P - P0
        np.abs(D, out=D)
        np.multiply(np.einsum("ij->i", D), 0.5, out=stats[3])
        # Jensen-Shannon divergence = H(M) - (H(P) + H(P0)) / 2 (M the midpoint), in bits.
        js = hM - 0.5 * (h + aux["h0"])
        np.maximum(js, 0.0, out=js)
        js *= 1.0 / np.log(2.0)
        np.sqrt(js, out=stats[4])
        stats[5] = h
        if y is None:
            stats[0] = 0.0
            stats[6:] = 0.0
        else:
            correct = pred == y
            p_y = P[rows, y]
            stats[0] = correct
            np.negative(logP[rows, y], out=stats[6])
            stats[7] = np.einsum("ij,ij->i", P, P) - 2.0 * p_y + 1.0
            self.confusion += np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
            bins = np.minimum((conf * self.n_bins).astype(np.int64), self.n_bins - 1)
            self.bin_correct += np.bincount(bins[correct], minlength=self.n_bins)
            self.bin_count += np.bincount(bins, minlength=self.n_bins)
            # Per-block bin sums keep the float sums independent of the batch size.
            per_block = np.bincount(
                aux["block_id"] * self.n_bins + bins,
                weights=conf,
                minlength=len(starts) * self.n_bins,
            ).reshape(len(starts), self.n_bins)
            for row in per_block:
                self.bin_conf += row
        for block in np.add.reduceat(stats, starts, axis=1).T:
            self.sums += block
        self.n += n
        self.pred_counts += np.bincount(pred, minlength=k)
        self.clean_pred_counts += np.bincount(pred0, minlength=k)
        self.flips_by_class += np.bincount(pred0[flip], minlength=k)

    # -- results ----------------------------------------------------------------------
    def _scalars(self) -> dict[str, float]:
        mean = dict(zip(self._FIELDS, self.sums / max(self.n, 1)))
        out = {
            "flip_rate": mean["flip"],
            "confidence_drop": mean["conf_drop"],
            "tv_distance": mean["tv"],
            "js_distance": mean["js"],
            "entropy": mean["entropy"],
            "class_shift": 0.5
            * float(np.abs(self.pred_counts - self.clean_pred_counts).sum())
            / max(self.n, 1),
        }
        if self.has_labels:
            nz = self.bin_count > 0
            gap = np.abs(
                self.bin_correct[nz] / self.bin_count[nz] - self.bin_conf[nz] / self.bin_count[nz]
            )
            out.update(
                accuracy=mean["correct"],
                log_loss=mean["nll"],
                brier=mean["brier"],
                ece=float((self.bin_count[nz] * gap).sum() / max(self.n, 1)),
            )
        return out

    def result(
        self, clean: ClassificationStats, classes: Sequence[Any] | None = None
    ) -> list[_Rows]:
        """Metric rows of this cell relative to the ``clean`` accumulator."""
        s, c = self._scalars(), clean._scalars()
        rows = [_Rows(k, "", float(v)) for k, v in s.items()]
        rows.append(_Rows("entropy_increase", "", s["entropy"] - c["entropy"]))
        if self.has_labels:
            rows += [
                _Rows("accuracy_drop", "", c["accuracy"] - s["accuracy"]),
                _Rows("ece_increase", "", s["ece"] - c["ece"]),
                _Rows("log_loss_increase", "", s["log_loss"] - c["log_loss"]),
                _Rows("brier_increase", "", s["brier"] - c["brier"]),
            ]
        n = max(self.n, 1)
        for i in range(self.k):
            g = f"class={_class_name(classes, i)}"
            rows.append(_Rows("predicted_share", g, self.pred_counts[i] / n))
            denom = self.clean_pred_counts[i]
            rows.append(
                _Rows("flip_rate_by_class", g, self.flips_by_class[i] / denom if denom else np.nan)
            )
        if self.has_labels:
            support = self.confusion.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                recall = np.diag(self.confusion) / support
                recall0 = np.diag(clean.confusion) / support
            for i in range(self.k):
                g = f"class={_class_name(classes, i)}"
                rows.append(_Rows("recall", g, float(recall[i])))
                rows.append(_Rows("recall_drop", g, float(recall0[i] - recall[i])))
            delta = self.confusion - clean.confusion
            np.fill_diagonal(delta, 0)
            for a, b in zip(*np.nonzero(delta)):
                g = f"{_class_name(classes, int(a))}->{_class_name(classes, int(b))}"
                rows.append(_Rows("transition_increase", g, delta[a, b] / n))
        return rows


class RegressionStats:
    """Sufficient statistics of one cell of a regression sweep (outputs ``(n,)`` or ``(n, m)``)."""

    _FIELDS = ("sq_err", "abs_err", "deviation", "bias")

    def __init__(self, n_outputs: int, *, has_labels: bool) -> None:
        self.m = n_outputs
        self.has_labels = has_labels
        self.n = 0
        self.sums = np.zeros((len(self._FIELDS), n_outputs))

    def update(
        self, F0: np.ndarray, F: np.ndarray, y: np.ndarray | None, starts: np.ndarray
    ) -> None:
        F0 = F0.reshape(F0.shape[0], -1)
        F = F.reshape(F.shape[0], -1)
        n = F.shape[0]
        stats = np.zeros((n, len(self._FIELDS), self.m))
        d = F - F0
        stats[:, 2] = d * d
        stats[:, 3] = d
        if y is not None:
            e = F - y.reshape(n, -1)
            stats[:, 0] = e * e
            stats[:, 1] = np.abs(e)
        for block in _block_sums(stats.reshape(n, -1), starts):
            self.sums += block.reshape(len(self._FIELDS), self.m)
        self.n += n

    def _per_output(self) -> dict[str, np.ndarray]:
        mean = self.sums / max(self.n, 1)
        return dict(zip(self._FIELDS, mean))

    def result(self, clean: RegressionStats, classes: Sequence[Any] | None = None) -> list[_Rows]:
        s, c = self._per_output(), clean._per_output()
        rows = [
            _Rows("deviation", "", float(s["deviation"].mean())),
            _Rows("bias", "", float(s["bias"].mean())),
        ]
        if self.has_labels:
            mse, mse0 = float(s["sq_err"].mean()), float(c["sq_err"].mean())
            mae, mae0 = float(s["abs_err"].mean()), float(c["abs_err"].mean())
            rows += [
                _Rows("mse", "", mse),
                _Rows("rmse", "", float(np.sqrt(mse))),
                _Rows("mae", "", mae),
                _Rows("mse_increase", "", mse - mse0),
                _Rows("rmse_increase", "", float(np.sqrt(mse) - np.sqrt(mse0))),
                _Rows("mae_increase", "", mae - mae0),
            ]
        if self.m > 1:
            for j in range(self.m):
                g = f"output={j}"
                rows.append(_Rows("deviation", g, float(s["deviation"][j])))
                if self.has_labels:
                    rows.append(_Rows("mse", g, float(s["sq_err"][j])))
                    rows.append(_Rows("mse_increase", g, float(s["sq_err"][j] - c["sq_err"][j])))
        return rows


def make_stats(
    task: str, n_outputs: int, *, has_labels: bool, n_bins: int = 15
) -> ClassificationStats | RegressionStats:
    if task == "classification":
        return ClassificationStats(n_outputs, has_labels=has_labels, n_bins=n_bins)
    return RegressionStats(n_outputs, has_labels=has_labels)
