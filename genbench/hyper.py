"""Hyper-parameters as typed dataclasses.

A model declares its hyper-parameters as a dataclass that extends :class:`Hyper`.
Field types drive how ``--grid key=v1,v2`` values are parsed, the field's
``metadata["help"]`` documents it in ``genbench list models``, and
``__post_init__`` validation rejects impossible values before any training.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from genbench.errors import GenbenchError, choices


def hp(default: Any, help: str) -> Any:
    """A dataclass field with a help text: ``z_dim: int = hp(64, "latent size")``."""
    return field(default=default, metadata={"help": help})


@dataclass
class Hyper:
    """Hyper-parameters every model has; models extend this dataclass.

    ``epochs`` and ``batch_size`` are hyper-parameters (the lab reports sweep batch
    size) but ``genbench run --epochs`` sets ``epochs`` for every model so that all
    of them get the same training budget.
    """

    # Defaults that depend on the kind of data ("image" or "points"), for the fields the user does not set:
    # a network sized for 784 pixels is the wrong default for 2-D points. ``{kind: {field: value}}``;
    # the complete values, these included, are what a cell records, so results never depend on a hidden rule.
    kind_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    z_dim: int = hp(64, "latent size (noise size for GANs, code size for AEs/VAEs)")
    lr: float = hp(2e-4, "learning rate (Adam)")
    batch_size: int = hp(64, "mini-batch size")
    epochs: int = hp(5, "passes over the training split")
    beta1: float = hp(0.5, "Adam beta1 (0.5 is the DCGAN paper's choice for GANs)")

    def __post_init__(self) -> None:
        positive(self, "z_dim", "batch_size", "epochs", "lr")
        if not 0.0 <= self.beta1 < 1.0:
            raise ValueError(f"beta1 must be in [0, 1), got {self.beta1}")


def positive(obj: object, *names: str) -> None:
    """Raise ValueError naming the first of ``names`` that is not > 0."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


H = TypeVar("H", bound=Hyper)


@dataclass(frozen=True)
class FieldInfo:
    """One hyper-parameter as ``genbench list`` shows it; ``by_kind``: its defaults for some data kinds."""

    name: str
    type: str
    default: Any
    help: str
    by_kind: dict[str, Any] = field(default_factory=dict)


def field_types(cls: type[Hyper]) -> dict[str, Any]:
    """The resolved type of every field of a Hyper dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def describe(cls: type[Hyper]) -> list[FieldInfo]:
    """Name, type, default and help of every hyper-parameter of ``cls``."""
    types_ = field_types(cls)
    return [
        FieldInfo(
            f.name,
            type_name(types_[f.name]),
            f.default,
            f.metadata.get("help", ""),
            {kind: values[f.name] for kind, values in cls.kind_defaults.items() if f.name in values},
        )
        for f in dataclasses.fields(cls)
    ]


def defaults_for(cls: type[Hyper], kind: str) -> dict[str, Any]:
    """The defaults ``cls`` declares for data of ``kind`` (see :attr:`Hyper.kind_defaults`), else {}."""
    return dict(cls.kind_defaults.get(kind, {}))


def type_name(tp: Any) -> str:
    """A short human name for a field type: ``int``, ``bce|hinge``, ``float|None``."""
    origin = get_origin(tp)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return "|".join(type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_value(tp: Any, text: str) -> Any:
    """Parse ``text`` into the type ``tp``; raise ValueError saying what is valid."""
    origin = get_origin(tp)
    s = text.strip()
    if origin is Literal:
        allowed = [str(a) for a in get_args(tp)]
        if s not in allowed:
            raise ValueError(f"{s!r} is not one of {choices(allowed)}")
        return get_args(tp)[allowed.index(s)]
    if origin in (Union, types.UnionType):
        members = get_args(tp)
        if type(None) in members and s.lower() in ("none", "null", ""):
            return None
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return parse_value(member, s)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if s == "":
        raise ValueError(f"empty value (expected {type_name(tp)})")
    if tp is bool:
        if s.lower() in _TRUE:
            return True
        if s.lower() in _FALSE:
            return False
        raise ValueError(f"{s!r} is not a bool (true/false)")
    if tp is int:
        try:
            return int(s)
        except ValueError:
            raise ValueError(f"{s!r} is not an int") from None
    if tp is float:
        try:
            value = float(s)
        except ValueError:
            raise ValueError(f"{s!r} is not a float") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{s!r} is not a finite float")
        return value
    if tp is str:
        return s
    raise ValueError(f"unsupported hyper-parameter type {type_name(tp)}")


def build(cls: type[H], values: dict[str, Any], owner: str, kind: str | None = None) -> H:
    """Instantiate ``cls`` from already-typed values, turning validation errors into GenbenchError.

    With ``kind`` (the data kind), the class's defaults for that kind fill the fields ``values`` leaves out.
    """
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown_keys = sorted(set(values) - set(valid))
    if unknown_keys:
        raise GenbenchError(f"{owner}: no hyper-parameter {unknown_keys[0]!r}; valid: {choices(valid)}")
    if kind is not None:
        values = {**defaults_for(cls, kind), **values}
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise GenbenchError(f"{owner}: {exc}") from None


def to_dict(hyper: Hyper) -> dict[str, Any]:
    """Field values of a Hyper dataclass, in declaration order."""
    return {f.name: getattr(hyper, f.name) for f in dataclasses.fields(hyper)}
