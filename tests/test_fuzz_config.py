"""Fuzzing the config loader: any YAML text, any data, and the example config with one value changed, deleted or
added anywhere give a Config or a ConfigError (one line per problem, each naming the file), nothing else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from exporter.config.loading import ConfigError, load_config, parse_config
from tests.fuzzing import FUZZ, json_values, report_inputs, tried  # noqa: F401 - report_inputs: fixture

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = yaml.safe_load((REPO / "examples" / "tripo04os.yaml").read_text())
ENV = {"DATABASE_URL": "postgresql://u:p@db/x", "REDIS_URL": "redis://cache:6379/0"}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


PATHS = _paths(EXAMPLE)[1:]


def _assert_outcome(data: Any, source: str = "fuzz.yaml") -> None:
    try:
        parse_config(data, source, env=ENV)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        assert lines and all(line.startswith(f"{source}: ") for line in lines), str(exc)


@FUZZ
@given(json_values)
def test_any_data_is_a_config_or_a_config_error(data: Any) -> None:
    tried(__name__, "data")
    _assert_outcome(data)


@FUZZ
@given(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "add"]), json_values,
       st.text(min_size=1, max_size=12))
def test_the_example_with_one_thing_changed_anywhere(path: tuple[Any, ...], how: str, value: Any,
                                                    key: str) -> None:
    tried(__name__, "example mutations")
    data = copy.deepcopy(EXAMPLE)
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    else:
        parent[last] = {key: value}
    _assert_outcome(data)


@FUZZ
@given(st.text(max_size=200) | st.sampled_from(["api: [", "postgres:\n  - {name: x, dsn: ${", "a: !!python/object {}",
                                                "targets: {api_latency_p95: 5}\n\t", "&a [*a]", "? [a]\n: b"]))
def test_any_text_in_the_file_is_a_config_or_a_config_error(tmp_path_factory: Any, text: str) -> None:
    tried(__name__, "file text")
    path = tmp_path_factory.getbasetemp() / "fuzz-config.yaml"
    path.write_text(text)
    try:
        load_config(path, env=ENV)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
