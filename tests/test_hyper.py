from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from genbench.errors import GenbenchError
from genbench.hyper import Hyper, build, describe, hp, parse_value, to_dict
from genbench.models.adversarial import GANHyper


@pytest.mark.parametrize(
    ("tp", "text", "expected"),
    [
        (int, "32", 32),
        (float, "2e-4", 2e-4),
        (float, "1", 1.0),
        (bool, "true", True),
        (bool, "off", False),
        (str, " x ", "x"),
        (Literal["bce", "hinge"], "hinge", "hinge"),
        (float | None, "none", None),
        (float | None, "0.1", 0.1),
    ],
)
def test_parse_value_types(tp: object, text: str, expected: object) -> None:
    value = parse_value(tp, text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("tp", "text", "message"),
    [
        (int, "abc", "'abc' is not an int"),
        (int, "1.5", "'1.5' is not an int"),
        (float, "nan", "not a finite float"),
        (int, "", "empty value"),
        (bool, "maybe", "not a bool"),
        (Literal["bce", "hinge"], "wgan", "'wgan' is not one of 'bce', 'hinge'"),
    ],
)
def test_parse_value_rejects_with_reason(tp: object, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_value(tp, text)


def test_build_rejects_unknown_key_listing_valid_ones() -> None:
    with pytest.raises(GenbenchError, match=r"model 'x': no hyper-parameter 'zdim'; valid: .*'z_dim'"):
        build(Hyper, {"zdim": 3}, "model 'x'")


@pytest.mark.parametrize("values", [{"z_dim": 0}, {"lr": -1.0}, {"epochs": 0}, {"beta1": 1.0}])
def test_build_validates_values(values: dict[str, object]) -> None:
    with pytest.raises(GenbenchError, match="model 'x': "):
        build(Hyper, values, "model 'x'")


def test_gan_hyper_validates_its_own_fields() -> None:
    with pytest.raises(GenbenchError, match="lr_d must be > 0"):
        build(GANHyper, {"lr_d": 0.0}, "model 'gan'")


def test_describe_lists_types_defaults_and_help() -> None:
    @dataclass
    class H(Hyper):
        loss: Literal["bce", "hinge"] = hp("bce", "the loss")

    fields = {f.name: f for f in describe(H)}
    assert fields["loss"].type == "bce|hinge" and fields["loss"].default == "bce" and fields["loss"].help
    assert fields["z_dim"].type == "int"
    assert list(to_dict(H())) == [f.name for f in describe(H)]


def test_kind_defaults_fill_only_what_is_not_given() -> None:
    @dataclass
    class H(Hyper):
        kind_defaults = {"points": {"z_dim": 2, "lr": 1e-3}}

    assert build(H, {}, "m").z_dim == 64  # no kind: the field defaults
    assert build(H, {}, "m", "image").z_dim == 64
    points = build(H, {"lr": 0.5}, "m", "points")
    assert (points.z_dim, points.lr) == (2, 0.5)  # given values win
    fields = {f.name: f for f in describe(H)}
    assert fields["z_dim"].by_kind == {"points": 2} and fields["batch_size"].by_kind == {}
    assert "kind_defaults" not in to_dict(points)
