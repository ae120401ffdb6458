"""Training-health flags: a discriminator that wins outright, collapse; conditional models need labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from genbench.errors import GenbenchError
from genbench.models.base import Capability
from genbench.protocol import CellRecord, Protocol
from genbench.reporting.table import comparison
from genbench.results import records_frame
from genbench.run.health import evaluation_flags, training_flags
from genbench.run.runner import RunRequest, run_grid

from .conftest import FakeModels, TinyModel


def test_discriminator_winning_outright_is_flagged_for_saturating_losses_only() -> None:
    history = [{"loss_d": 0.7}, {"loss_d": 0.004}, {"loss_d": 0.002}]
    assert training_flags(history, {"loss": "bce"}) == ["d_wins: discriminator loss < 0.01 over epochs 2-3 (2)"]
    assert training_flags(history[:2], {"loss": "hinge"}) == ["d_wins: discriminator loss < 0.01 over epoch 2"]
    assert training_flags(history, {"loss": "wgan-gp"}) == []  # a critic's loss is unbounded
    assert training_flags([{"loss_d": 0.5}], {}) == [] and training_flags([{"loss": 0.0}], {}) == []


def test_collapse_is_flagged_from_classes_or_modes_covered() -> None:
    assert evaluation_flags({"classes_covered": 3, "classes_total": 10}) == ["collapse: 3/10 classes covered"]
    assert evaluation_flags({"classes_covered": 9, "classes_total": 10}) == []
    assert evaluation_flags({"modes_covered": 2, "modes_total": 8}) == ["collapse: 2/8 modes covered"]
    assert evaluation_flags({"fid_domain": 3.0}) == []


def test_flags_reach_results_and_the_table_status() -> None:
    a = CellRecord("gan_s0", "gan", "digits", 0, {"z_dim": 8})
    a.flags = ["d_wins: discriminator loss < 0.01 over epoch 2", "collapse: 1/10 classes covered"]
    b = CellRecord("vae_s0", "vae", "digits", 0, {"z_dim": 8})
    df = records_frame([a, b])
    assert df.loc[0, "flags"].startswith("d_wins") and df.loc[1, "flags"] == ""
    table = comparison(df, {"metric_better": {}})
    assert table.rows[0][-1] == "ok; d_wins, collapse" and table.rows[1][-1] == "ok"
    assert "flags" not in table.headers  # not mistaken for a hyper-parameter


class ConditionalTiny(TinyModel):
    name = "ctiny"
    capabilities = frozenset({Capability.SAMPLE, Capability.CONDITIONAL})


def test_conditional_model_on_unlabelled_data_fails_before_training(
    tmp_path: Path, use_plugin: Callable[[object, str], None]
) -> None:
    use_plugin(FakeModels(ConditionalTiny), "cond")
    protocol = Protocol("toy2d-spiral", ("mmd",), epochs=1)
    with pytest.raises(GenbenchError, match=r"model 'ctiny' is conditional and needs a labelled dataset; "
                       r"'toy2d-spiral' has no classes; labelled: .*'mnist5k'"):  # fmt: skip
        run_grid(RunRequest(("ctiny",), protocol, tmp_path))
    assert not (tmp_path / "results.csv").exists()
