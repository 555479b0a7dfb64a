"""Renders the chart's templates without helm (no helm binary runs here): the subset of Go templates and Sprig
the chart uses, nothing more. ``{{ .Values.x }}``, ``.Release.Name``, ``if``/``else``/``end``, ``range $k, $v
:= ...``, ``define``/``include``, pipelines, and the functions ``int gt le eq toYaml indent quote sha256sum``.
An unknown function or construct raises, so a template that outgrows this renderer fails its test loudly
instead of rendering wrong. ``.Files`` (the PrometheusRule's glob) is not supported: tests/test_packaging.py
checks that template's inputs instead."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\(|\)|\||:=|,|[^\s()|,]+')


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


FUNCTIONS: dict[str, Any] = {
    "int": lambda v: int(v),
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "toYaml": _to_yaml,
    "indent": lambda n, text: "\n".join(" " * n + line for line in str(text).split("\n")),
    "quote": lambda v: json.dumps(str(v)),
    "sha256sum": lambda v: hashlib.sha256(str(v).encode()).hexdigest(),
}


@dataclass
class Node:
    kind: str  # text, expr, if, range, define
    text: str = ""
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


def _parse(source: str) -> list[Node]:
    pieces: list[tuple[str, str]] = []
    pos = 0
    for match in ACTION.finditer(source):
        text = source[pos:match.start()]
        if match.group(1):
            text = text.rstrip()
        if pieces and pieces[-1][0] == "trim-next":
            pieces.pop()
            text = text.lstrip()
        pieces.append(("text", text))
        pieces.append(("action", match.group(2)))
        if match.group(3):
            pieces.append(("trim-next", ""))
        pos = match.end()
    tail = source[pos:]
    if pieces and pieces[-1][0] == "trim-next":
        pieces.pop()
        tail = tail.lstrip()
    pieces.append(("text", tail))

    root: list[Node] = []
    stack: list[tuple[Node | None, list[Node]]] = [(None, root)]
    for kind, text in pieces:
        target = stack[-1][1]
        if kind == "text":
            if text:
                target.append(Node("text", text))
            continue
        if text.startswith(("/*", "//")):
            continue
        word = text.split(maxsplit=1)[0]
        if word in ("if", "range", "define"):
            node = Node(word, text[len(word):].strip())
            target.append(node)
            stack.append((node, node.body))
        elif word == "else":
            owner = stack[-1][0]
            assert owner is not None and owner.kind == "if", "else outside if"
            stack[-1] = (owner, owner.orelse)
        elif word == "end":
            stack.pop()
        else:
            target.append(Node("expr", text))
    assert len(stack) == 1, "unclosed block"
    return root


@dataclass
class Chart:
    path: Path
    defines: dict[str, list[Node]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for template in sorted((self.path / "templates").glob("_*.tpl")):
            for node in _parse(template.read_text()):
                if node.kind == "define":
                    self.defines[json.loads(node.text)] = node.body

    def render(self, name: str, values: dict[str, Any], release: str = "perf") -> str:
        context = {"Values": values, "Release": {"Name": release}}
        return self._run(_parse((self.path / "templates" / name).read_text()), context, {})

    def _run(self, nodes: list[Node], dot: Any, variables: dict[str, Any]) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "expr":
                value = self._pipeline(TOKEN.findall(node.text), dot, variables)
                out.append("" if value is None else str(value))
            elif node.kind == "if":
                branch = node.body if self._pipeline(TOKEN.findall(node.text), dot, variables) else node.orelse
                out.append(self._run(branch, dot, variables))
            elif node.kind == "range":
                tokens = TOKEN.findall(node.text)
                assert tokens[1] == "," and tokens[3] == ":=", f"range form not supported: {node.text}"
                mapping = self._pipeline(tokens[4:], dot, variables) or {}
                for key in sorted(mapping):
                    out.append(self._run(node.body, dot, {**variables, tokens[0]: key, tokens[2]: mapping[key]}))
            elif node.kind == "define":
                continue
        return "".join(out)

    def _pipeline(self, tokens: list[str], dot: Any, variables: dict[str, Any]) -> Any:
        commands: list[list[str]] = [[]]
        depth = 0
        for token in tokens:
            depth += token == "("
            depth -= token == ")"
            if token == "|" and depth == 0:
                commands.append([])
            else:
                commands[-1].append(token)
        value = self._command(commands[0], dot, variables, None)
        for command in commands[1:]:
            value = self._command(command, dot, variables, value)
        return value

    def _command(self, tokens: list[str], dot: Any, variables: dict[str, Any], piped: Any) -> Any:
        args: list[Any] = []
        i = 0
        head = tokens[0]
        while i < len(tokens):
            token = tokens[i]
            if token == "(":
                depth, j = 1, i + 1
                while depth:
                    depth += (tokens[j] == "(") - (tokens[j] == ")")
                    j += 1
                args.append(self._pipeline(tokens[i + 1:j - 1], dot, variables))
                i = j
                continue
            if i > 0 or (head not in FUNCTIONS and head != "include"):
                args.append(self._value(token, dot, variables))
            i += 1
        if piped is not None or head in FUNCTIONS or head == "include":
            if piped is not None:
                args.append(piped)
            if head == "include":
                name, context = args
                return self._run(self.defines[name], context, {})
            if head not in FUNCTIONS:
                raise ValueError(f"function {head!r} is not supported by tests/helm_render.py")
            return FUNCTIONS[head](*args)
        assert len(args) == 1, f"cannot evaluate {' '.join(tokens)}"
        return args[0]

    def _value(self, token: str, dot: Any, variables: dict[str, Any]) -> Any:
        if token.startswith('"'):
            return json.loads(token)
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        if token == ".":
            return dot
        if token.startswith("$"):
            return variables[token]
        if token.startswith("."):
            value = dot
            for part in token[1:].split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return value
        raise ValueError(f"{token!r} is not supported by tests/helm_render.py")


def manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
