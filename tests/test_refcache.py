"""The reference-statistics cache: content-addressed, checked on read, safe under concurrent writers."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.metrics.refcache import ReferenceKey, load_or_compute, read_entry

KEY = ReferenceKey("digits", "f" * 64, "test", 50, "domain", "genbench-domain", "w" * 16, "penultimate")


def features(seed: int = 0) -> torch.Tensor:
    return torch.randn(50, 6, generator=torch.Generator().manual_seed(seed))


def test_entry_is_a_standard_npz_with_fid_statistics(tmp_path: Path) -> None:
    stats = load_or_compute(tmp_path, KEY, features)
    assert stats.path is not None and stats.path.suffix == ".npz" and stats.note == ""
    with np.load(stats.path) as data:
        assert set(data.files) == {"key", "mu", "sigma", "features"}
        np.testing.assert_allclose(data["mu"], features().double().mean(0).numpy(), rtol=1e-6)
        np.testing.assert_allclose(data["sigma"], np.cov(features().double().numpy(), rowvar=False), rtol=1e-6)


def test_second_use_reads_the_cache_without_computing(tmp_path: Path) -> None:
    load_or_compute(tmp_path, KEY, features)

    def must_not_run() -> torch.Tensor:
        raise AssertionError("recomputed although cached")

    again = load_or_compute(tmp_path, KEY, must_not_run)
    assert torch.equal(again.features, features())


def test_every_part_of_the_key_addresses_a_different_entry() -> None:
    names = {KEY.filename()}
    for change in (
        {"fingerprint": "e" * 64},
        {"split": "train"},
        {"n": 51},
        {"weights": "x" * 16},
        {"layer": "logits"},
    ):
        names.add(ReferenceKey(**{**KEY.__dict__, **change}).filename())
    assert len(names) == 6


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "unreadable"),
        (lambda p: p.write_text("not a zip"), "unreadable"),
        (
            lambda p: np.savez(
                p.open("wb"), key=np.array("other"), mu=np.zeros(6), sigma=np.eye(6), features=np.zeros((50, 6))
            ),
            "key does not match",
        ),
    ],
)
def test_corrupt_or_mismatched_entries_are_recomputed_never_used(tmp_path: Path, damage, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = load_or_compute(tmp_path, KEY, features).path
    assert path is not None
    damage(path)
    assert read_entry(path, KEY)[0] is None
    redone = load_or_compute(tmp_path, KEY, lambda: features())
    assert reason in redone.note and torch.equal(redone.features, features())
    assert read_entry(path, KEY)[0] is not None  # repaired on disk


def test_nan_statistics_are_rejected(tmp_path: Path) -> None:
    path = load_or_compute(tmp_path, KEY, features).path
    assert path is not None
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["sigma"][0, 0] = np.nan
    np.savez(path.open("wb"), **arrays)
    assert "NaN" in read_entry(path, KEY)[1]


def _fill(cache: str, counter: str) -> None:
    def compute() -> torch.Tensor:
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(0.5)  # long enough for the other process to arrive while this one computes
        return features()

    stats = load_or_compute(Path(cache), KEY, compute)
    assert torch.equal(stats.features, features())


def test_two_processes_filling_the_cache_at_once_compute_it_once(tmp_path: Path) -> None:
    counter = tmp_path / "computations"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_fill, args=(str(tmp_path), str(counter))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert counter.read_text() == "x"
    assert read_entry(tmp_path / "reference" / KEY.filename(), KEY)[0] is not None
