"""Every figure is a public function returning a matplotlib Figure built from the run's numbers."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from perturbkit import ParameterError
from perturbkit.report import plot_curves, plot_error_modes, plot_heatmap, plot_per_class


def _bars(fig: Figure) -> list[BarContainer]:
    return [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]


def test_curves_one_line_per_perturbation_with_interval(cls_result):
    rc_before = dict(matplotlib.rcParams)
    fig = plot_curves(cls_result)
    assert isinstance(fig, Figure)
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert dict(matplotlib.rcParams) == rc_before  # no global state left behind
    (ax,) = fig.axes
    assert len(ax.lines) == 3
    assert len(ax.collections) == 3  # the repeats' interval, one band per perturbation
    assert ax.get_ylabel() == "Accuracy"
    curve = cls_result.curve("accuracy")
    for line in ax.lines:
        label = line.get_label()
        np.testing.assert_allclose(line.get_xdata(), curve.index.to_numpy())
        np.testing.assert_allclose(line.get_ydata(), curve[label].to_numpy())
    assert "own unit" in ax.get_xlabel()


def test_curves_default_metric_follows_task_and_labels(
    unlabeled_result, reg_result, reg_unlabeled_result
):
    fig = plot_curves(unlabeled_result)
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    assert len(ax.collections) == 0  # a single repeat: no interval
    assert "Flip rate" in ax.get_ylabel()
    assert "squared error" in plot_curves(reg_result).axes[0].get_ylabel()
    assert "deviation" in plot_curves(reg_unlabeled_result).axes[0].get_ylabel()


def test_curves_other_metric_and_unknown_metric(cls_result):
    fig = plot_curves(cls_result, "ece")
    assert "calibration" in fig.axes[0].get_ylabel()
    with pytest.raises(ParameterError, match=r"'metric' parameter of plot_curves.*'nope'"):
        plot_curves(cls_result, "nope")


def test_curves_not_a_result():
    with pytest.raises(ParameterError, match="must be a SweepResult"):
        plot_curves([1, 2, 3])


def test_heatmap_values_are_the_mean_drop(cls_result):
    fig = plot_heatmap(cls_result)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # heatmap and colour bar
    z = fig.axes[0].images[0].get_array()
    curve = cls_result.curve("accuracy_drop")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert z.shape == (3, 4)
    for i, label in enumerate(labels):
        np.testing.assert_allclose(np.ma.getdata(z[i]), curve[label].to_numpy())


def test_heatmap_blank_cells_for_untested_magnitudes(mixed_result):
    fig = plot_heatmap(mixed_result)
    z = fig.axes[0].images[0].get_array()
    assert z.shape == (2, 5)  # union of {0, .1, .5} and {0, .2, 1}
    assert int(np.ma.count_masked(z)) == 4


def test_heatmap_regression_default_metric(reg_result, reg_unlabeled_result):
    assert "MSE increase" in plot_heatmap(reg_result).axes[0].get_title(loc="left")
    assert "deviation" in plot_heatmap(reg_unlabeled_result).axes[0].get_title(loc="left")


def test_per_class_bars(cls_result):
    fig = plot_per_class(cls_result)
    bars = _bars(fig)
    assert len(bars) == 3 and all(len(b) == 2 for b in bars)  # 3 perturbations x 2 classes
    assert "magnitude 1" in fig.axes[0].get_title(loc="left")
    t = cls_result.with_labels()
    sel = t[(t["metric"] == "recall_drop") & (t["magnitude"] == 1.0)]
    want = sel.groupby(["label", "group"], sort=False)["value"].mean()
    labels = [h.get_label() for h in bars]
    for label, b in zip(labels, bars):
        got = [r.get_height() for r in b]
        np.testing.assert_allclose(got, want[label].loc[["class=0", "class=1"]].to_numpy())


def test_per_class_chosen_and_missing_magnitude(cls_result, mixed_result):
    assert "magnitude 0.3" in plot_per_class(cls_result, magnitude=0.3).axes[0].get_title(
        loc="left"
    )
    with pytest.raises(ParameterError, match="'magnitude' parameter of plot_per_class"):
        plot_per_class(cls_result, magnitude=0.7)
    fig = plot_per_class(mixed_result)  # no shared non-zero magnitude: each its largest
    labels = sorted(b.get_label() for b in _bars(fig))
    assert labels == ["gaussian_noise @ 0.5", "sensor_drift @ 1"]


def test_per_class_and_error_modes_need_labelled_classification(reg_result, unlabeled_result):
    for func in (plot_per_class, plot_error_modes):
        with pytest.raises(ParameterError, match="needs a classification run with labels"):
            func(reg_result)
        with pytest.raises(ParameterError, match="without labels"):
            func(unlabeled_result)


def test_error_modes_top_transitions(cls_result):
    fig = plot_error_modes(cls_result, top=1)
    bars = _bars(fig)
    assert len(bars) == 3 and all(len(b) == 1 for b in bars)
    t = cls_result.with_labels()
    sel = t[(t["metric"] == "transition_increase") & (t["magnitude"] == 1.0)]
    n_rep = t["repeat"].nunique()
    growth = sel.groupby(["group", "label"])["value"].sum() / n_rep  # absent rows are zeros
    top_mode = growth.groupby("group").max().idxmax()
    ticks = [x.get_text() for x in fig.axes[0].get_yticklabels()]
    assert ticks == [top_mode.replace("->", " → ")]
    for b in bars:
        assert b[0].get_width() == pytest.approx(growth.loc[(top_mode, b.get_label())])
    with pytest.raises(ParameterError, match="'top' parameter"):
        plot_error_modes(cls_result, top=0)


def test_figures_save_to_png_and_svg(cls_result):
    for fig in (plot_curves(cls_result), plot_heatmap(cls_result), plot_error_modes(cls_result)):
        for fmt in ("png", "svg"):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt)
            assert buf.tell() > 1000


def test_hostile_labels_do_not_break_mathtext(evil_result):
    fig = plot_curves(evil_result)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert any("<script>" in lab for lab in labels)
    fig.savefig(io.BytesIO(), format="png")  # a '$' in a label must not start mathtext
