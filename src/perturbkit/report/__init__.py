"""HTML report and figures of a sweep.

``write_report(result, "report.html")`` writes one self-contained HTML file
(inline CSS and SVG, no script, no external URL) with the run summary, the
clean baseline, robustness curves, a degradation heatmap, thresholds,
per-class recall and error modes, a plain-language summary and a
reproducibility block. Every figure is also a public function returning a
:class:`matplotlib.figure.Figure`::

    from perturbkit.report import plot_curves, write_report
    fig = plot_curves(result)          # accuracy vs magnitude, one line per perturbation
    write_report([clf_result, reg_result], "robustness.html", command="perturbkit run exp.yaml")

Robustness curves (:func:`perturbkit.robustness_curve`) and stored bounds runs
go into the same report, in a "Robustness bounds" section::

    write_report([result, curve], "robustness.html")

Inputs before and after each perturbation, and the interactions of pairs of
perturbations, go into the same report::

    examples = perturbation_examples(result, X, n_rows=3)   # re-applied, seeded
    table = perturbkit.analysis.interactions.interactions(model, X, y, ...)
    write_report(result, "robustness.html", examples=examples, interactions=table)
"""

from __future__ import annotations

from perturbkit.report.examples import Example, perturbation_examples
from perturbkit.report.figures import plot_curves, plot_error_modes, plot_heatmap, plot_per_class
from perturbkit.report.html import render_html, write_report
from perturbkit.report.summary import default_tolerance, plain_language_summary

__all__ = [
    "Example",
    "default_tolerance",
    "perturbation_examples",
    "plain_language_summary",
    "plot_curves",
    "plot_error_modes",
    "plot_heatmap",
    "plot_per_class",
    "render_html",
    "write_report",
]
