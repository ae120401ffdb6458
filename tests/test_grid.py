from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import genbench
from genbench.errors import GenbenchError
from genbench.plugins import get_registry
from genbench.protocol import Protocol
from genbench.run.grid import GridAxis, cell_id, parse_axis, parse_seeds, plan_cells
from tests.conftest import FakeModels, TinyHyper, TinyModel

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


# -- cell identity --------------------------------------------------------------------------------
@dataclass
class PathHyper(TinyHyper):
    init: str = genbench.hp("a/b", "a free-form string (a path, say)")


class PathModel(TinyModel):
    name = "pathy"
    Hyper = PathHyper


@pytest.fixture
def pathy(use_plugin: Callable[[object, str], None]) -> None:
    use_plugin(FakeModels(PathModel), "test-path-model")


def test_values_that_round_alike_are_two_cells_with_two_folders() -> None:
    a, b = plan(("gan",), ["lr=0.0002,0.0002000001"])
    assert (a.hyper["lr"], b.hyper["lr"]) == (0.0002, 0.0002000001)
    assert a.cell_id != b.cell_id and a.out_dir != b.out_dir
    assert a.cell_id.startswith("gan_lr=0.0002_") and a.cell_id.endswith("_s0")  # still readable


def test_strings_that_differ_only_by_a_slash_are_two_cells(pathy: None) -> None:
    a, b, c = plan(("pathy",), ["init=a/b,a-b,a_b"])
    assert len({a.cell_id, b.cell_id, c.cell_id}) == 3
    assert all("/" not in cell.cell_id and cell.out_dir.parent == Path("out/cells") for cell in (a, b, c))


def test_a_very_long_value_keeps_the_id_a_valid_path_component(pathy: None) -> None:
    long_a, long_b = "é" * 300 + "a", "é" * 300 + "b"  # differ only after the readable part is cut
    cells = plan(("pathy",), [f"init={long_a},{long_b}"], seeds=(0, 2**63 - 1))
    assert len({c.cell_id for c in cells}) == 4
    for cell in cells:
        assert len(cell.cell_id.encode()) <= 200 and re.fullmatch(r"[A-Za-z0-9_.=\-]+", cell.cell_id)
    with pytest.raises(GenbenchError, match="--seeds"):
        parse_seeds(str(2**63))


def test_seeds_of_one_cell_share_everything_but_the_seed() -> None:
    cells = plan(("gan",), ["z_dim=8,16"], seeds=(0, 1))
    prefixes = [c.cell_id.rsplit("_s", 1)[0] for c in cells]
    assert prefixes[0] == prefixes[1] != prefixes[2] == prefixes[3]


def test_the_digest_covers_values_the_grid_does_not_vary() -> None:
    default = plan(("gan",), ["z_dim=8"])[0]
    other_loss = plan(("gan",), ["z_dim=8", "gan.loss=hinge"])[0]
    assert cell_id("gan", default.hyper, ["z_dim"], 0) == default.cell_id
    assert cell_id("gan", other_loss.hyper, ["z_dim"], 0) != default.cell_id
    assert cell_id("vae", default.hyper, ["z_dim"], 0).split("_")[-2] != default.cell_id.split("_")[-2]


def test_spellings_of_one_value_are_one_cell_in_first_order() -> None:
    cells = plan(("gan",), ["lr=2e-4,1e-4,0.0001,0.00020", "z_dim=8,08"])
    assert [c.hyper["lr"] for c in cells] == [2e-4, 1e-4]
    assert {c.hyper["z_dim"] for c in cells} == {8}


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (["z_dim=2", "z_dim=3"], r"^--grid z_dim: given twice \(z_dim=2 and z_dim=3\); give the key once"),
        (["gan.z_dim=2", "gan.z_dim=3"], r"^--grid gan.z_dim: given twice \(gan.z_dim=2 and gan.z_dim=3\)"),
    ],
)
def test_a_key_given_twice_is_an_error_naming_it(grid: list[str], message: str) -> None:
    with pytest.raises(GenbenchError, match=message) as info:
        plan(("gan",), grid)
    assert "\n" not in str(info.value)


def test_a_scoped_axis_still_overrides_the_unscoped_one() -> None:
    cells = plan(("gan", "vae"), ["z_dim=2", "gan.z_dim=3"])
    assert [(c.model, c.hyper["z_dim"]) for c in cells] == [("gan", 3), ("vae", 2)]


def test_a_model_given_twice_is_an_error_not_one_folder_for_two_runs() -> None:
    with pytest.raises(GenbenchError, match="planned twice"):
        plan(("gan", "gan"), [])
