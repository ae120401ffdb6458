"""The sample picture: conditional samples laid out one class per column."""

from __future__ import annotations

import numpy as np
import torch

from genbench.reporting.images import sample_grid


def test_class_balanced_samples_get_one_column_per_class() -> None:
    # 100 samples in label order 0..9, 0..9, ...: sample i is a flat grey of level (i % 10) / 10
    level = (torch.arange(100) % 10).float() / 10
    samples = level[:, None, None, None].expand(100, 1, 8, 8)
    img = np.asarray(sample_grid(samples, scale=1, columns=10))
    cell = 8 + 2  # image side plus make_grid's padding
    assert img.shape[:2] == (6 * cell + 2, 10 * cell + 2)  # whole rows only: 60 of the 100 samples
    for row in range(6):
        for col in range(10):
            y, x = 2 + row * cell + 4, 2 + col * cell + 4  # the middle of each tile
            assert (img[y, x] == round(col / 10 * 255)).all(), (row, col)


def test_default_grid_is_eight_by_eight() -> None:
    img = sample_grid(torch.rand(100, 3, 8, 8), scale=2)
    assert img.size == (2 * (8 * 10 + 2), 2 * (8 * 10 + 2))
