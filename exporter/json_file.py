"""Writing a file whole (a JSON document or a text): readers never see half of it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")
