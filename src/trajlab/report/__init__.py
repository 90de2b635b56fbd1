"""Plots, GIFs and self-contained HTML reports for run directories."""

from trajlab.report.html import Report
from trajlab.report.media import save_gif
from trajlab.report.plots import plot_curves, read_metrics

__all__ = ["Report", "plot_curves", "read_metrics", "save_gif"]
