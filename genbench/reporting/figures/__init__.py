"""Figures: pictures of a cell's model, chosen by capability and saved per cell (see base.py)."""

from genbench.reporting.figures.base import Animation, Figure, FigureContext, FigureSkipped, Picture

__all__ = ["Animation", "Figure", "FigureContext", "FigureSkipped", "Picture"]
