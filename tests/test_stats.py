"""Seed statistics: mean, sample std, t interval of the mean, best-or-tie ranking."""

from __future__ import annotations

import math

import pytest

from genbench.reporting.stats import Summary, rank, summarize, t_halfwidth

T_975_DF2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 and 3 degrees of freedom (tables)
T_975_DF3 = 3.182446305284263


def test_summary_of_three_values_matches_a_hand_computation() -> None:
    s = summarize([10.0, 12.0, 14.0])
    # mean 12; sample variance ((-2)^2 + 0 + 2^2) / (3 - 1) = 4, std 2; half-width t * 2 / sqrt(3)
    half = T_975_DF2 * 2.0 / math.sqrt(3)
    assert (s.n, s.mean, s.std) == (3, 12.0, pytest.approx(2.0))
    assert s.interval == (pytest.approx(12.0 - half), pytest.approx(12.0 + half))
    assert s.ci_low == pytest.approx(7.031725, abs=1e-6) and s.ci_high == pytest.approx(16.968275, abs=1e-6)


def test_summary_of_four_values() -> None:
    s = summarize([1, 2, 3, 4])
    std = math.sqrt(5 / 3)
    assert s.mean == 2.5 and s.std == pytest.approx(std)
    assert s.ci_high - s.mean == pytest.approx(T_975_DF3 * std / 2)
    assert t_halfwidth(std, 4) == pytest.approx(T_975_DF3 * std / 2)


def test_one_value_has_no_spread_and_no_interval() -> None:
    s = summarize([5.0])
    assert s.n == 1 and s.mean == 5.0 and math.isnan(s.std)
    assert s.ci_low is None and s.ci_high is None and s.interval is None


def test_missing_values_are_skipped_and_none_left_is_empty() -> None:
    assert summarize([1.0, float("nan"), None, 3.0]).n == 2
    empty = summarize([None, float("nan")])
    assert empty.n == 0 and math.isnan(empty.mean) and empty.interval is None
    assert summarize([]).n == 0


def test_identical_values_give_a_zero_width_interval() -> None:
    s = summarize([2.0, 2.0, 2.0])
    assert s.std == 0.0 and s.interval == (2.0, 2.0)


def test_t_halfwidth_needs_two_values() -> None:
    with pytest.raises(ValueError, match="at least two"):
        t_halfwidth(1.0, 1)


def test_overlap_is_closed_and_a_missing_interval_overlaps_everything() -> None:
    a, b, c = Summary(3, 1.0, 1.0, 0.0, 2.0), Summary(3, 3.0, 1.0, 2.0, 4.0), Summary(3, 5.0, 1.0, 4.5, 5.5)
    assert a.overlaps(b) and b.overlaps(a)  # they touch at 2.0
    assert not a.overlaps(c) and not c.overlaps(a)
    assert Summary(1, 9.0, math.nan).overlaps(a)


def test_rank_clear_best_when_intervals_are_apart() -> None:
    low, high = summarize([1.0, 1.1, 0.9]), summarize([5.0, 5.1, 4.9])
    assert rank([high, low], "lower") == {1: "best"}
    assert rank([high, low], "higher") == {0: "best"}


def test_rank_ties_the_best_with_every_overlapping_group_only() -> None:
    a = summarize([10.0, 12.0, 14.0])  # [7.0, 17.0]
    b = summarize([11.0, 13.0, 15.0])  # mean 13, overlaps a
    c = summarize([40.0, 41.0, 42.0])  # far away
    assert rank([b, c, a], "lower") == {0: "tie", 2: "tie"}
    assert rank([b, c, a], "higher") == {1: "best"}


def test_rank_with_one_value_everywhere_is_plain_best_and_equal_values_share_it() -> None:
    rows = [summarize([3.0]), summarize([1.0]), summarize([1.0]), summarize([])]
    assert rank(rows, "lower") == {1: "best", 2: "best"}
    assert rank(rows, "higher") == {0: "best"}


def test_rank_group_with_one_value_cannot_be_separated() -> None:
    best, single = summarize([1.0, 1.1, 0.9]), summarize([50.0])
    assert rank([best, single], "lower") == {0: "tie", 1: "tie"}


def test_rank_ignores_missing_and_rejects_unknown_direction() -> None:
    assert rank([None, summarize([]), summarize([2.0, 2.5])], "lower") == {2: "best"}
    assert rank([None, summarize([])], "lower") == {}
    with pytest.raises(ValueError, match="lower"):
        rank([summarize([1.0])], "sideways")  # type: ignore[arg-type]
