"""Dataset plugins: the interface and the built-ins."""

from genbench.datasets.base import DataInfo, Dataset, LoadOptions, Split

__all__ = ["DataInfo", "Dataset", "LoadOptions", "Split"]
