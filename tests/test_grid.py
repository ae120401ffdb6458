from __future__ import annotations

from pathlib import Path

import pytest

from genbench.errors import GenbenchError
from genbench.plugins import get_registry
from genbench.protocol import Protocol
from genbench.run.grid import GridAxis, parse_axis, parse_seeds, plan_cells

PROTOCOL = Protocol("digits", ("fid",))


def plan(models: tuple[str, ...], grid: list[str], seeds: tuple[int, ...] = (0,), epochs: int | None = None):
    protocol = Protocol("digits", ("fid",), epochs=epochs)
    return plan_cells(get_registry(), models, [parse_axis(g) for g in grid], seeds, protocol, Path("out"))


def test_parse_axis_plain_and_scoped() -> None:
    assert parse_axis("z_dim=32,64") == GridAxis("z_dim", ("32", "64"), None)
    assert parse_axis("gan.lr=1e-4, 2e-4") == GridAxis("lr", ("1e-4", "2e-4"), "gan")
    assert parse_axis("z_dim=32,32,64").values == ("32", "64")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("z_dim", "expected key=v1,v2"),
        ("lr=", "no values given"),
        ("lr=1,,2", "empty value"),
        ("=3", "is not a key"),
        ("a.b.c=1", "is not a key"),
    ],
)
def test_parse_axis_errors(text: str, message: str) -> None:
    with pytest.raises(GenbenchError, match=message):
        parse_axis(text)


def test_grid_is_cartesian_product_per_model_and_seed() -> None:
    cells = plan(("gan", "vae"), ["z_dim=16,32,64", "lr=1e-3,2e-4"], seeds=(0, 1))
    assert len(cells) == 2 * 3 * 2 * 2
    assert len({c.cell_id for c in cells}) == len(cells)
    gan = [c for c in cells if c.model == "gan"]
    assert {(c.hyper["z_dim"], c.hyper["lr"], c.seed) for c in gan} == {
        (z, lr, s) for z in (16, 32, 64) for lr in (1e-3, 2e-4) for s in (0, 1)
    }
    assert all(isinstance(c.hyper["z_dim"], int) and isinstance(c.hyper["lr"], float) for c in cells)
    assert all(c.out_dir == Path("out/cells") / c.cell_id for c in cells)


def test_cells_hold_complete_hyper_parameters_with_defaults() -> None:
    (cell,) = plan(("gan",), [])
    assert cell.hyper["z_dim"] == 100 and cell.hyper["loss"] == "bce" and cell.hyper["lr_g"] is None


def test_scoped_key_applies_to_one_model_and_overrides() -> None:
    cells = plan(("gan", "vae"), ["lr=1e-3", "gan.lr=1e-4,2e-4", "gan.loss=hinge"])
    assert sorted(c.hyper["lr"] for c in cells if c.model == "gan") == [1e-4, 2e-4]
    assert [c.hyper["lr"] for c in cells if c.model == "vae"] == [1e-3]
    assert all(c.hyper["loss"] == "hinge" for c in cells if c.model == "gan")


def test_epochs_option_sets_every_models_budget() -> None:
    cells = plan(("gan", "vae", "ae"), [], epochs=3)
    assert {c.hyper["epochs"] for c in cells} == {3}


@pytest.mark.parametrize(
    ("models", "grid", "message"),
    [
        (("gan",), ["zdim=3"], r"--grid zdim: model 'gan' has no hyper-parameter 'zdim'; valid: .*'z_dim'"),
        (("gan",), ["z_dim=abc"], r"--grid z_dim: 'abc' is not an int \(model 'gan'\)"),
        (("gan",), ["loss=wgan"], r"'wgan' is not one of 'bce', 'hinge'"),
        (("gan",), ["z_dim=0"], r"model 'gan': z_dim must be > 0"),
        (("gan", "vae"), ["loss=hinge"], r"model 'vae' has no hyper-parameter 'loss'"),
        (("gan",), ["vae.lr=1e-3"], r"model 'vae' is not among --models"),
    ],
)
def test_grid_errors_name_the_axis_and_valid_choices(models: tuple[str, ...], grid: list[str], message: str) -> None:
    with pytest.raises(GenbenchError, match=message):
        plan(models, grid)


def test_grid_epochs_conflicts_with_epochs_option() -> None:
    with pytest.raises(GenbenchError, match="conflicts with --epochs"):
        plan(("gan",), ["epochs=1,2"], epochs=3)


def test_parse_seeds() -> None:
    assert parse_seeds("0,1,2") == (0, 1, 2)
    for bad in ("a", "-1", "1,,2"):
        with pytest.raises(GenbenchError, match="--seeds"):
            parse_seeds(bad)


def test_cells_get_the_models_defaults_for_the_data_kind() -> None:
    protocol = Protocol("toy2d", ("modes",))
    ring = plan_cells(get_registry(), ("gan", "ae"), [parse_axis("gan.lr=1e-3")], (0,), protocol, Path("out"))
    gan = next(c for c in ring if c.model == "gan")
    assert (gan.hyper["z_dim"], gan.hyper["width"], gan.hyper["r1"]) == (2, 64, 1.0)
    assert gan.hyper["lr"] == 1e-3  # the grid wins over the kind default
    image = plan(("gan",), [])[0]
    assert (image.hyper["z_dim"], image.hyper["width"], image.hyper["r1"]) == (100, 256, 10.0)
