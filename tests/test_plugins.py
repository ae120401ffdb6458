"""The plugin manager: one road for built-ins and entry points, loud failures, typed registry."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest

import genbench
from genbench import hookspecs
from genbench.errors import GenbenchError
from genbench.plugins import BUILTIN, DEFAULT_PLUGINS, load_registry

from .conftest import FakeModels, TinyModel

PLUGINS = {
    "good_plugin": """
        import genbench
        from genbench.models.gans import GAN

        class Other(GAN):
            name = "other-gan"

        @genbench.hookimpl
        def register_models(register):
            register(Other)
    """,
    "broken_plugin": "import no_such_module_anywhere\n",
    "misspelt_plugin": """
        import genbench

        @genbench.hookimpl
        def register_model(register):
            pass
    """,
    "dup_plugin": """
        import genbench
        from genbench.models.gans import GAN

        class Dup(GAN):
            name = "gan"

        @genbench.hookimpl
        def register_models(register):
            register(Dup)
    """,
    "raising_plugin": """
        import genbench

        @genbench.hookimpl
        def register_metrics(register):
            raise ValueError("metric table corrupt")
    """,
    "notsub_plugin": """
        import genbench

        @genbench.hookimpl
        def register_datasets(register):
            register(dict)
    """,
    "shapeless_plugin": """
        import genbench

        class NoShape(genbench.Dataset):
            name = "noshape"

            def load(self, options):
                return {}

        @genbench.hookimpl
        def register_datasets(register):
            register(NoShape)
    """,
    "undecorated_plugin": """
        import genbench
        from genbench.models.gans import GAN, GANHyper

        class Plain(GANHyper):  # forgot @dataclass: its field would silently not exist
            extra: int = 3

        class Undecorated(GAN):
            name = "undecorated"
            Hyper = Plain

        @genbench.hookimpl
        def register_models(register):
            register(Undecorated)
    """,
}


@pytest.fixture
def installed_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake installed distribution 'fakeplug 1.0' with one entry point per test plugin."""
    for module, source in PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / "fakeplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    eps = "\n".join(f"{m.removesuffix('_plugin')} = {m}" for m in PLUGINS)
    (info / "entry_points.txt").write_text(f"[genbench]\n{eps}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_are_default_plugins_and_load_without_problems() -> None:
    registry = load_registry(entry_points=[])
    assert [p.name for p in registry.plugins] == list(DEFAULT_PLUGINS)
    assert {p.origin for p in registry.plugins} == {BUILTIN}
    assert {"ae", "vae", "gan", "dcgan"} <= set(registry.models)
    assert {"mnist5k", "digits", "mnist", "fashion-mnist", "cifar10", "toy2d"} <= set(registry.datasets)
    assert {"fid", "recon_mse", "elbo"} <= set(registry.metrics)
    assert registry.problems == []


def test_entry_points_are_found_with_package_origin(installed_dist: Path) -> None:
    registry = load_registry()
    assert registry.models["other-gan"].plugin.origin == "fakeplug 1.0"
    assert registry.models["gan"].plugin.origin == BUILTIN  # the duplicate did not replace it


def test_each_problem_is_reported_by_name_and_the_rest_load(installed_dist: Path) -> None:
    registry = load_registry()
    problems = "\n".join(registry.problems)
    assert "plugin 'broken' (fakeplug 1.0) failed to load: ModuleNotFoundError" in problems
    assert "plugin 'misspelt' (fakeplug 1.0) implements unknown hook(s) register_model; valid:" in problems
    assert "model 'gan' is already registered by 'genbench.models.builtin' (built-in); ignored" in problems
    assert "plugin 'raising' (fakeplug 1.0) raised in register_metrics: ValueError: metric table corrupt" in problems
    assert "registered <class 'dict'>, which is not a Dataset subclass" in problems
    assert "dataset 'noshape' has no valid 'shape'" in problems
    assert "model 'undecorated' has Hyper class Plain without @dataclass; ignored" in problems
    assert len(registry.problems) == 7
    assert all("\n" not in p for p in registry.problems)
    assert "other-gan" in registry.models and "fid" in registry.metrics


def test_disabled_plugins_are_skipped(installed_dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENBENCH_DISABLE_PLUGINS", "good, broken")
    registry = load_registry()
    assert "other-gan" not in registry.models
    assert not any("broken" in p for p in registry.problems)


def test_unknown_names_list_valid_choices() -> None:
    registry = load_registry(entry_points=[])
    with pytest.raises(GenbenchError, match=r"unknown model 'gna'; valid: 'ae', 'cdcgan', 'cgan', 'convvae', 'dcgan',"):
        registry.model("gna")
    with pytest.raises(GenbenchError, match=r"unknown dataset 'mnits'; valid: .*'mnist'"):
        registry.dataset("mnits")


def test_fixture_registered_plugin_is_removed_again(use_plugin) -> None:  # type: ignore[no-untyped-def]
    registry = genbench.plugins.get_registry()
    use_plugin(FakeModels(TinyModel), "temp")
    assert registry.models["tiny"].plugin.origin == "test"
    registry.remove_plugin("temp")
    assert "tiny" not in registry.models and registry.pm.get_plugin("temp") is None


def refusal(hyper: type[genbench.Hyper]) -> str:
    """Register a model with ``hyper`` in a fresh registry; return the problem that kept it out."""

    class Bad(TinyModel):
        name = "bad"
        Hyper = hyper

    registry = load_registry(entry_points=[])
    registry.add_plugin("bad", lambda: FakeModels(Bad), "test")
    assert "bad" not in registry.models
    return registry.problems[-1]


def test_reserved_hyper_parameter_names_are_rejected() -> None:
    from dataclasses import dataclass

    @dataclass
    class BadHyper(genbench.Hyper):
        status: str = "x"

    assert "uses reserved hyper-parameter name 'status'" in refusal(BadHyper)


def test_every_hook_has_a_docstring_and_a_test() -> None:
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]
    assert sorted(hooks) == [
        "register_datasets",
        "register_executors",
        "register_figures",
        "register_metrics",
        "register_models",
    ]
    tests = Path(__file__).parent.glob("test_*.py")
    source = "\n".join(p.read_text() for p in tests)
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, name
        assert f"def {name}" in source, f"no test plugin implements {name}"


def test_same_entry_point_name_from_two_packages_is_reported(installed_dist: Path) -> None:
    other = installed_dist / "otherplug-2.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: otherplug\nVersion: 2.0\n")
    (other / "entry_points.txt").write_text("[genbench]\ngood = good_plugin\n")
    registry = load_registry()
    assert sum("already used by a plugin from" in p for p in registry.problems) == 1
    assert "other-gan" in registry.models


@pytest.mark.parametrize(
    ("kind_defaults", "problem"),
    [
        ({"video": {"z_dim": 2}}, "kind_defaults for unknown data kind 'video'; valid: image, points"),
        ({"points": {"depth": 2}}, "unusable kind_defaults['points'] (kind_defaults: no hyper-parameter 'depth'"),
        ({"points": {"z_dim": 0}}, "unusable kind_defaults['points'] (kind_defaults: z_dim must be > 0"),
    ],
)
def test_bad_kind_defaults_are_reported(kind_defaults: dict[str, dict[str, int]], problem: str) -> None:
    from dataclasses import dataclass

    @dataclass
    class KindHyper(genbench.Hyper):
        pass

    KindHyper.kind_defaults = kind_defaults
    assert problem in refusal(KindHyper)
