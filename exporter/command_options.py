"""How every command's options are built from its parsed arguments: one dataclass per command, whose fields are
the parser's ``dest`` names."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def options(kind: type[T], args: argparse.Namespace, **given: Any) -> T:
    """``kind`` with every field from the argument of the same name, ``given`` for the fields an argument does not
    hold as they are (several arguments made into one value); the rest keep their defaults."""
    assert dataclasses.is_dataclass(kind)
    found = {f.name: getattr(args, f.name) for f in dataclasses.fields(kind) if hasattr(args, f.name)}
    return kind(**{**found, **given})
