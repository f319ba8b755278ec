"""The registry: provenance, lazy factories, collisions, failures, env-var control."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field, field_validator

import ganenc
from ganenc import hookimpl
from ganenc.config import Settings, builds_from
from ganenc.errors import (
    ComponentConflictError,
    ConfigError,
    PluginLoadError,
    UnknownComponentError,
)
from ganenc.registry import Registry
from ganenc.testing import isolated_registry, register_plugin

GOOD_PLUGIN = """
from ganenc import hookimpl

@hookimpl
def register_croppers(register):
    register("fixed", "{module}:make", description="fixed boxes")

def make(**options):
    return ("fixed", options)
"""


class BoxOptions(Settings):
    margin: float = Field(0.1, ge=0, lt=0.5)


class ToyPlugin:
    @hookimpl
    def register_croppers(self, register):
        register("toy", lambda margin: ("toy", margin), options=BoxOptions, aliases=("toy-alias",))


def test_builtin_components_are_registered_through_the_hooks():
    registry = Registry(entry_points=False)
    spec = registry.get("loss", "mse")
    assert (spec.plugin, spec.distribution, spec.version) == (
        "ganenc",
        "ganenc",
        ganenc.__version__,
    )
    assert isinstance(spec.factory, str), "built-ins register lazy references too"


def test_installed_plugins_are_found_through_entry_points():
    registry = Registry()
    assert registry.get("generator", "stylegan2").distribution == "ganenc-stylegan"
    assert registry.get("cropper", "center").plugin == "attention_center"
    assert registry.get("generator", "stylegan").name == "stylegan1"  # alias


def test_create_validates_options_with_the_component_model():
    with isolated_registry(), register_plugin(ToyPlugin()):
        assert ganenc.create("cropper", "toy", margin=0.2) == ("toy", 0.2)
        assert ganenc.create("cropper", "toy-alias") == ("toy", 0.1)
        with pytest.raises(ConfigError, match=r"margin = 0\.7"):
            ganenc.create("cropper", "toy", margin=0.7)
        with pytest.raises(ConfigError, match="unknown setting 'colour'"):
            ganenc.create("cropper", "toy", colour="red")
        # options are keywords: a positional one was a TypeError from inside the factory
        with pytest.raises(ConfigError, match=r"1 positional .*\(its options: margin\)"):
            ganenc.create("cropper", "toy", 0.2)


class CountedOptions(Settings):
    """Options that count how often they are validated."""

    margin: float = Field(0.1, ge=0, lt=0.5)
    validations: ClassVar[list[float]] = []

    @field_validator("margin")
    @classmethod
    def _count(cls, value: float) -> float:
        cls.validations.append(value)
        return value


@builds_from(CountedOptions, "cropper 'counted'")
def counted_cropper(options: CountedOptions) -> tuple[str, CountedOptions]:
    return ("counted", options)


class CountedPlugin:
    @hookimpl
    def register_croppers(self, register):
        register("counted", counted_cropper, options=CountedOptions)


def test_a_builds_from_factory_gets_the_model_the_registry_validated_once():
    CountedOptions.validations.clear()
    with isolated_registry(), register_plugin(CountedPlugin()):
        name, options = ganenc.create("cropper", "counted", margin=0.25)
        assert name == "counted" and isinstance(options, CountedOptions)
        assert options.margin == 0.25
        assert CountedOptions.validations == [0.25]  # the registry's validation, not a second
        with pytest.raises(ConfigError, match=r"cropper 'counted'.*margin = 0\.7"):
            ganenc.create("cropper", "counted", margin=0.7)
    CountedOptions.validations.clear()
    # called directly (not through the registry) it validates its keyword values itself, once
    assert counted_cropper(margin=0.3)[1].margin == 0.3
    assert CountedOptions.validations == [0.3]
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        counted_cropper(colour="red")


def test_generator_factories_validate_once_through_the_registry(monkeypatch):
    from ganenc_pggan.adapter import PGGANOptions, load_pggan

    calls = []
    original = PGGANOptions.model_validate.__func__

    def counting(cls, *args, **kwargs):
        calls.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(PGGANOptions, "model_validate", classmethod(counting))
    assert load_pggan.from_options is not None and load_pggan.options_model is PGGANOptions
    ganenc.create("generator", "pggan", resolution=16, z_dim=16, fmaps_base=64, fmaps_max=8)
    assert calls == [PGGANOptions]


def test_register_plugin_lasts_one_block_only():
    with isolated_registry() as registry:
        with register_plugin(ToyPlugin()):
            assert registry.get("cropper", "toy")
        with pytest.raises(UnknownComponentError, match="no cropper named 'toy'"):
            registry.get("cropper", "toy")


def test_unknown_kind_and_name_are_clear_errors():
    registry = Registry(entry_points=False)
    with pytest.raises(UnknownComponentError, match="available: cosine"):
        registry.get("loss", "nope")
    with pytest.raises(ganenc.GanencError, match="unknown component kind 'colour'"):
        registry.get("colour", "red")


def test_same_name_from_two_distributions_is_an_error_naming_both():
    class Other:
        @hookimpl
        def register_croppers(self, register):
            register("toy", lambda: "other")

    with isolated_registry() as registry:
        registry.add_plugin(ToyPlugin(), name="first", distribution="dist-a", version="1")
        registry.add_plugin(Other(), name="second", distribution="dist-b", version="2")
        with pytest.raises(ComponentConflictError) as info:
            registry.get("cropper", "toy")
        message = str(info.value)
        assert "dist-a" in message and "dist-b" in message
        assert "'first:toy'" in message and "'second:toy'" in message
        assert ganenc.create("cropper", "second:toy") == "other"
        assert ganenc.create("cropper", "first:toy", margin=0.3) == ("toy", 0.3)
        assert [
            s.qualified_name for s in registry.conflicts(registry.get("cropper", "first:toy"))
        ] == ["second:toy"]


def test_a_plugin_registering_a_name_twice_fails_without_overwriting():
    class Twice:
        @hookimpl
        def register_croppers(self, register):
            register("dup", lambda: 1)
            register("dup", lambda: 2)

    with isolated_registry() as registry:
        registry.add_plugin(Twice(), name="twice")
        assert registry.components("cropper") == []
        assert registry.plugins["twice"].status == "failed"
        assert "registers cropper 'dup' twice" in registry.plugins["twice"].error


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("register('bad name', lambda: 1)", "invalid cropper name"),
        ("register('x', 42)", "factory must be a callable"),
        ("register('x', lambda: 1, options=dict)", "is not a pydantic model"),
        ("register('x', lambda: 1, options='not a reference')", "options must be a pydantic model"),
        ("register('x', lambda: 1, aliases=('a:b',))", "invalid alias"),
        ("raise RuntimeError('boom in hook')", "boom in hook"),
    ],
)
def test_invalid_registrations_mark_only_that_plugin_failed(call, message):
    namespace: dict = {}
    exec(f"def hook(register):\n    {call}", {}, namespace)  # noqa: S102 - test data
    plugin = type("Bad", (), {"register_croppers": staticmethod(hookimpl(namespace["hook"]))})()
    with isolated_registry() as registry:
        registry.add_plugin(plugin, name="bad")
        registry.add_plugin(ToyPlugin(), name="good")
        assert [s.name for s in registry.components("cropper")] == ["toy"]
        assert registry.plugins["bad"].status == "failed"
        assert message in registry.plugins["bad"].error


def test_plugin_that_fails_to_import_is_recorded(fake_distribution):
    fake_distribution("ganenc-broken", "broken", "raise ImportError('missing dependency xyz')")
    registry = Registry()
    info = registry.plugins["broken"]
    assert info.status == "failed" and "missing dependency xyz" in info.error
    assert info.distribution == "ganenc-broken"
    assert registry.get("generator", "stylegan2")  # the others still load


def test_strict_mode_raises_for_plugin_authors(fake_distribution, monkeypatch):
    fake_distribution("ganenc-broken", "broken", "raise ImportError('missing dependency xyz')")
    monkeypatch.setenv("GANENC_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="missing dependency xyz"):
        Registry()


def test_allow_and_block_lists(fake_distribution, monkeypatch):
    root = fake_distribution("ganenc-fixed", "fixed", "")
    (root / "ganenc_fixed_plugin.py").write_text(GOOD_PLUGIN.format(module="ganenc_fixed_plugin"))
    assert Registry().get("cropper", "fixed").distribution == "ganenc-fixed"

    monkeypatch.setenv("GANENC_PLUGINS", "fixed,stylegan")
    registry = Registry()
    assert registry.plugins["pggan"].status == "disabled"
    assert registry.get("cropper", "fixed")
    assert registry.get("generator", "stylegan2")
    with pytest.raises(UnknownComponentError):
        registry.get("generator", "pggan")

    monkeypatch.delenv("GANENC_PLUGINS")
    monkeypatch.setenv("GANENC_DISABLE_PLUGINS", "ganenc-fixed")  # distribution names work too
    registry = Registry()
    assert registry.plugins["fixed"].status == "disabled"
    with pytest.raises(UnknownComponentError):
        registry.get("cropper", "fixed")

    monkeypatch.setenv("GANENC_PLUGINS", "")
    registry = Registry()
    assert {i.status for n, i in registry.plugins.items() if n != "ganenc"} == {"disabled"}
    assert registry.get("loss", "mse")  # built-ins are always there


def test_listing_imports_no_factory_module(fake_distribution):
    import sys

    root = fake_distribution("ganenc-lazy", "lazy", "")
    (root / "ganenc_lazy_plugin.py").write_text(
        "from ganenc import hookimpl\n"
        "@hookimpl\n"
        "def register_losses(register):\n"
        "    register('lazy', 'ganenc_lazy_heavy:Loss', domain='image')\n"
    )
    (root / "ganenc_lazy_heavy.py").write_text(
        "raise RuntimeError('imported too early')\nclass Loss:\n    pass\n"
    )
    registry = Registry()
    assert registry.get("loss", "lazy").metadata == {"domain": "image"}
    assert "ganenc_lazy_heavy" not in sys.modules
    with pytest.raises(PluginLoadError, match="imported too early"):
        registry.create("loss", "lazy")


def test_find_by_metadata_selects_encoder_builders():
    registry = Registry()
    assert [s.name for s in registry.find("encoder", generators="stylegan2")] == [
        "stylegan-adaptive"
    ]
    assert [s.name for s in registry.find("encoder", generators="pggan")] == ["pggan-adaptive"]
    assert registry.find("encoder", generators="no-such-gan") == []
