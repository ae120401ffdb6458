"""Reporting a run: comparison tables (table), statistics over seeds (stats), per-cell pictures (images,
figures), and ``genbench report`` (report reads runs; html and markdown render them, with svg charts)."""
