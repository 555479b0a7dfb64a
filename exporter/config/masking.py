"""Showing a config without its secrets: what ``check-config`` prints. Every string goes through the one masking
rule (:func:`exporter.secrets.mask_url`), so a URL in any field (an api ``base_url``, a Jaeger ``url``) loses its
password and its query tokens; a secret field (``password``, ``bearer_token``) is masked whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from exporter.config.schema import Config
from exporter.config.units import format_duration, parse_duration, parse_ratio
from exporter.secrets import MASK, mask_header, mask_url


def masked(config: Config) -> dict[str, Any]:
    """The effective config as plain data, secrets replaced, ready for YAML."""
    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, SecretStr):
            raw = node.get_secret_value()
            return mask_url(raw) if key in ("dsn", "url") else MASK
        if isinstance(node, BaseModel):
            out = {}
            for name, field in type(node).model_fields.items():
                value = getattr(node, name)
                if isinstance(value, float) and _parsed_by(field, parse_duration):
                    out[field.alias or name] = format_duration(value)
                elif isinstance(value, float) and _parsed_by(field, parse_ratio):
                    out[field.alias or name] = f"{value * 100:g}%"
                else:
                    out[field.alias or name] = walk(value, name)
            return out
        if isinstance(node, dict):
            if key == "headers":
                return {k: mask_header(k, v.get_secret_value() if isinstance(v, SecretStr) else str(v))
                        for k, v in node.items()}
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item, key) for item in node]
        if isinstance(node, Path):
            return str(node)
        if isinstance(node, str):
            return mask_url(node)
        return node

    result: dict[str, Any] = walk(config)
    return result


def _parsed_by(field: FieldInfo, parser: Any) -> bool:
    """Whether the field's type is Duration or Ratio (also inside ``| None``): known by its validator."""
    def mentions(node: Any) -> bool:
        return getattr(node, "func", None) is parser or any(mentions(arg) for arg in get_args(node))

    return any(getattr(m, "func", None) is parser for m in field.metadata) or mentions(field.annotation)


def dump_masked(config: Config) -> str:
    return yaml.safe_dump(masked(config), sort_keys=False, default_flow_style=False)
