"""The statistics behind compare/check: Welch's test, Benjamini-Hochberg, seeds for 80% power, tolerances."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from genbench.errors import GenbenchError
from genbench.reporting.significance import adjust, difference_test, pooled_sd, seeds_for_power
from genbench.reporting.tolerance import DEFAULTS, Tolerance, parse_items, parse_value, resolve


def test_welch_p_value_is_scipys_unequal_variance_t_test() -> None:
    a, b = [674.2, 620.1, 700.3], [512.5, 480.0, 545.1, 530.2]
    p, test = difference_test(a, b)
    assert test == "Welch t"
    assert p == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-9)


def test_speed_uses_students_pooled_test() -> None:
    a, b = [8.51, 8.49, 8.55, 8.47], [8.30, 8.36, 8.28]
    p, test = difference_test(a, b, equal_var=True)
    assert test == "Student t"
    assert p == pytest.approx(stats.ttest_ind(b, a, equal_var=True).pvalue, rel=1e-9)


def test_one_seed_a_side_gives_no_p_value_and_says_the_tolerance_decides() -> None:
    assert difference_test([1.0], [2.0]) == (None, "1 seed a side: tolerance only")


def test_one_seed_against_several_is_tested_against_their_spread() -> None:
    group = [10.0, 11.0, 9.0, 10.5]
    p, test = difference_test([20.0], group)
    t = (20.0 - sum(group) / 4) / (stats.tstd(group) * math.sqrt(1 + 1 / 4))
    assert p == pytest.approx(2 * stats.t.sf(abs(t), 3)) and "other side's spread" in test
    assert difference_test(group, [20.0])[0] == pytest.approx(p)  # either side


def test_groups_without_spread_differ_with_certainty_or_not_at_all() -> None:
    assert difference_test([7.0, 7.0, 7.0], [6.0, 6.0, 6.0])[0] == 0.0
    assert difference_test([7.0, 7.0], [7.0, 7.0, 7.0])[0] == 1.0


def test_benjamini_hochberg_matches_the_definition_and_skips_untested() -> None:
    p = [0.01, 0.04, None, 0.03, 0.5]
    # sorted tested: 0.01, 0.03, 0.04, 0.5 (m=4): q = min over later ranks of p*m/rank
    q = adjust(p)
    assert q[2] is None
    assert q[0] == pytest.approx(0.04) and q[1] == pytest.approx(0.04 * 4 / 3) and q[3] == pytest.approx(0.04 * 4 / 3)
    assert q[4] == pytest.approx(0.5)


@pytest.mark.parametrize(("effect", "seeds"), [(1.0, 17), (0.8, 26), (0.5, 64)])
def test_seeds_for_power_are_the_textbook_two_sample_t_figures(effect: float, seeds: int) -> None:
    # Cohen's d at alpha 0.05 (two-sided) and 80% power: 17, 26 and 64 per group (G*Power, exact t).
    assert seeds_for_power(sd=2.0, delta=2.0 * effect, alpha=0.05) == seeds


def test_seeds_for_power_edges() -> None:
    assert seeds_for_power(0.0, 1.0, 0.05) == 2  # no spread: the smallest test settles it
    assert seeds_for_power(1.0, 0.0, 0.05) is None  # nothing to detect
    assert seeds_for_power(100.0, 1.0, 0.05) is None  # more than a thousand
    assert pooled_sd([1.0], [2.0]) is None
    assert pooled_sd([1.0, 3.0], [5.0]) == pytest.approx(math.sqrt(2.0))


def test_tolerances_parse_percentages_and_amounts() -> None:
    assert parse_value("fid_domain", "5%", "x") == Tolerance(0.05, True)
    assert parse_value("kid_domain", "0.002", "x") == Tolerance(0.002, False)
    assert parse_value("kid_domain", 0.002, "x") == Tolerance(0.002, False)  # a TOML number
    assert str(Tolerance(0.15)) == "15%" and str(Tolerance(0.002, False)) == "0.002"
    assert Tolerance(0.05).size(-200.0) == 10.0 and Tolerance(3.0, False).size(1e9) == 3.0


def test_tolerance_layers_name_before_group_and_first_layer_first() -> None:
    cli = parse_items(["speed=30%"])
    suite = parse_items(["train_speed=20%", "fid_domain=2%"])
    baseline = parse_items(["metrics=10%"])
    assert resolve("train_speed", cli, suite, baseline) == Tolerance(0.30)  # what the user typed now wins
    assert resolve("fid_domain", cli, suite, baseline) == Tolerance(0.02)
    assert resolve("kid_domain", cli, suite, baseline) == Tolerance(0.10)
    assert resolve("kid_domain") == DEFAULTS["metrics"] and resolve("sample_speed") == DEFAULTS["speed"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("fid=abc", "--tolerance fid=abc: 'abc' is not a percentage or a number; write e.g. fid=5% or fid=0.002"),
        ("fid_domain=-5%", "--tolerance fid_domain=-5%: a tolerance cannot be negative (-5%)"),
        ("speed=3", "--tolerance speed=3: speed tolerances are percentages of time; write e.g. speed=15%"),
        ("fid_domain", "--tolerance 'fid_domain': expected NAME=VALUE"),
        ("fid_domain=nan%", "is not a percentage or a number"),
        ("fid_domain=%", "is not a percentage or a number"),
    ],
)
def test_bad_tolerances_are_one_line_errors(item: str, message: str) -> None:
    with pytest.raises(GenbenchError) as err:
        parse_items([item])
    assert message in str(err.value) and "\n" not in str(err.value)
