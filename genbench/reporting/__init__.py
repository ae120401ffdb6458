"""Reporting a run: comparison tables (table), statistics over seeds (stats), images (images)."""
