"""A k6-operator ``TestRun`` for load one machine cannot generate: the same scenario, split over ``parallelism``
runner pods by the operator (each runs its execution segment), the scripts in a ConfigMap, the thresholds from
``targets:`` and the Prometheus remote-write settings in the runners' environment. A variable that holds a
credential (a base URL with a password, a remote-write URL with a token) is not written into the manifest: the
runners read it from the Secret :data:`ENV_SECRET`, which :func:`secret_note` tells how to create.

Written for ``kubectl apply`` (``--k6-operator N``), each runner then evaluates the thresholds on its own share;
or created, followed and judged as one run by ``bench`` itself (``--kubeconfig``: :mod:`exporter.load.kubernetes`,
whose TestRun carries the run id and no thresholds). The manifest follows the operator's ``k6.io/v1alpha1``
``TestRun`` resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from exporter.load.catalog import scenarios_dir
from exporter.load.plan import RunPlan
from exporter.load.prometheus_receiver import write_url_of
from exporter.secrets import holds_secret

LIB = "tripo.js"
ENV_SECRET = "perf-exporter-k6-env"


def _flat_script(text: str) -> str:
    """A ConfigMap is one flat directory: the scripts import the shared module from beside them."""
    return text.replace("'./lib/tripo.js'", f"'./{LIB}'")


def _arguments(plan: RunPlan) -> str:
    """k6's command line minus what only a local run uses (the REST address, the summary file, the script)."""
    argv = list(plan.argv[1:-1])  # without "run" and the script
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--address", "--summary-export"):
            skip = True
            continue
        if arg not in ("--quiet", "--no-color"):
            out.append(arg)
    return " ".join(out)


def testrun_manifest(plan: RunPlan, parallelism: int, prometheus_rw: str | None = None,
                     namespace: str | None = None, name: str | None = None, run_id: str | None = None,
                     extra_arguments: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ConfigMap and the TestRun, as Kubernetes objects; ``run_id`` tags the samples (default: the scenario)."""
    if parallelism < 1:
        raise ValueError("--k6-operator: expected a parallelism of at least 1")
    name = name or f"perf-{plan.scenario.name}"
    script = plan.scenario.script
    meta: dict[str, Any] = {"name": f"{name}-scripts", "labels": {"app.kubernetes.io/part-of": "perf-exporter"}}
    if namespace:
        meta["namespace"] = namespace
    config_map = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
        "data": {script: _flat_script(plan.scenario.script_path().read_text()),
                 LIB: (scenarios_dir() / "lib" / LIB).read_text()},
    }
    env = dict(plan.env)
    arguments = _arguments(plan)
    arguments += f" --tag testid={run_id or plan.scenario.name}"
    arguments += "".join(f" {arg}" for arg in extra_arguments)
    if prometheus_rw:
        env.update({"K6_PROMETHEUS_RW_SERVER_URL": write_url_of(prometheus_rw),
                    "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true"})
        arguments += " --out experimental-prometheus-rw"
    run_meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "perf-exporter"}}
    if namespace:
        run_meta["namespace"] = namespace
    test_run = {
        "apiVersion": "k6.io/v1alpha1", "kind": "TestRun", "metadata": run_meta,
        "spec": {
            "parallelism": parallelism,
            "script": {"configMap": {"name": meta["name"], "file": script}},
            "arguments": arguments.strip(),
            "runner": {"env": [_env_entry(k, v) for k, v in sorted(env.items())]},
        },
    }
    return [config_map, test_run]


def _env_entry(name: str, value: str) -> dict[str, Any]:
    if holds_secret(name, value):
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": ENV_SECRET, "key": name}}}
    return {"name": name, "value": value}


def secret_note(objects: list[dict[str, Any]]) -> str | None:
    """What to create before applying the manifest: the Secret its runners read credentials from (the command
    takes each value from the shell's variable of the same name, so no credential is written or shown)."""
    names = [e["name"] for o in objects if o["kind"] == "TestRun" for e in o["spec"]["runner"]["env"]
             if "valueFrom" in e]
    if not names:
        return None
    literals = " ".join(f'--from-literal={name}="${name}"' for name in names)
    verb = "holds" if len(names) == 1 else "hold"
    return (f"{', '.join(names)} {verb} credentials: the runners read them from Secret {ENV_SECRET}; create it first, "
            f"in the TestRun's namespace: kubectl create secret generic {ENV_SECRET} {literals}")


class _Dumper(yaml.SafeDumper):
    """Scripts as literal blocks, readable in the manifest."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, width=120)
