"""Multi-step user journeys: each step's request is filled in from values captured earlier in the journey."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from exporter.probes.api_target import Endpoint, Journey, JourneyStep
from exporter.probes.http import _MISSING, json_field
from exporter.probes.security_target import PLACEHOLDER


class MissingVariable(Exception):
    pass


def fill(template: Any, variables: dict[str, Any]) -> Any:
    """Replace ``{name}`` in strings (recursively in lists and dicts). A string that is exactly one placeholder
    takes the captured value with its JSON type."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            return _lookup(whole.group(1), variables)
        return PLACEHOLDER.sub(lambda m: str(_lookup(m.group(1), variables)), template)
    if isinstance(template, list):
        return [fill(item, variables) for item in template]
    if isinstance(template, dict):
        return {key: fill(value, variables) for key, value in template.items()}
    return template


def _lookup(name: str, variables: dict[str, Any]) -> Any:
    if name not in variables:
        raise MissingVariable(f"variable {{{name}}} was not captured by an earlier step")
    return variables[name]


@dataclass(frozen=True)
class StepRequest:
    label: str
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, Any]
    body: Any
    expect_status: list[int]
    expect: dict[str, Any]
    capture: dict[str, str]


def resolve_step(index: int, step: JourneyStep, endpoints: dict[str, Endpoint]) -> StepRequest:
    """Merge a step with the endpoint it names (the step's own fields win)."""
    base = endpoints[step.endpoint] if step.endpoint is not None else None
    method = step.method or (base.method if base else "GET")
    path = step.path or (base.path if base else "/")
    label = step.name or step.endpoint or f"step{index + 1}"
    headers = {**(base.headers if base else {}), **step.headers}
    query = {**(base.query if base else {}), **step.query}
    body = step.body if step.body is not None else (base.body if base else None)
    inherited = base.expect_status if base else []
    expect_status = step.expect_status if step.expect_status is not None else inherited
    expect = {**(base.expect if base else {}), **step.expect}
    return StepRequest(label, method, path, headers, query, body, expect_status, expect, dict(step.capture))


def steps_of(journey: Journey, endpoints: dict[str, Endpoint]) -> list[StepRequest]:
    return [resolve_step(i, step, endpoints) for i, step in enumerate(journey.steps)]


def capture(body: bytes, wanted: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """Variables from a JSON response; the error names the first field that is not there."""
    if not wanted:
        return {}, None
    try:
        document = json.loads(body)
    except ValueError:
        return {}, "cannot capture from a response that is not JSON"
    values: dict[str, Any] = {}
    for variable, path in wanted.items():
        value = json_field(document, path)
        if value is _MISSING:
            return values, f"cannot capture {variable!r}: JSON field {path!r} is missing"
        values[variable] = value
    return values, None
