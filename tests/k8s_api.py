"""A small Kubernetes API server that plays k6-operator, for ``bench --k6-operator N --kubeconfig FILE`` without a
cluster: a real HTTP server speaking the few REST endpoints the lifecycle uses, and a real run behind it.

- ConfigMaps: create, delete (``/api/v1/namespaces/<ns>/configmaps``).
- TestRuns (``/apis/k6.io/v1alpha1/namespaces/<ns>/testruns``): create, get, delete. A created TestRun goes
  through k6-operator's stages (initialization, initialized, created, started, stopped, finished) while its
  ``parallelism`` runners run as local k6 processes with the command line k6-operator gives a runner pod
  (pkg/resources/jobs/runner.go: ``k6 run --quiet`` the segment options, the spec's arguments, the script from
  the ConfigMap, ``--address``, ``--tag instance_id=<i>``, ``--tag testrun_name=<name>``) and the runner's env.
  Deleting it stops its runners. ``fail`` makes a runner's "pod" die (SIGKILL) after that many seconds.
- Jobs (``/apis/batch/v1/namespaces/<ns>/jobs?labelSelector=...``): list, one ``<name>-<i>`` per runner,
  failed or succeeded by its exit code, labelled as the operator labels them.

Every request is recorded (method, path, the bearer token it carried) for the tests to check the calls against
the RBAC rules the docs give.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exporter.load.distributed_run import segment_fragments
from exporter.load.k6_binary import find_k6
from tests.servers import free_port

TOKEN = "fake-cluster-token-0123456789"


@dataclass
class Runner:
    index: int
    proc: subprocess.Popen[bytes]

    @property
    def job(self) -> dict[str, Any]:
        code = self.proc.poll()
        return {"active": 1} if code is None else {"failed": 1} if code != 0 else {"succeeded": 1}


@dataclass
class FakeTestRun:
    body: dict[str, Any]
    stage: str = "initialization"
    runners: list[Runner] = field(default_factory=list)
    deleted: bool = False


class FakeKubernetes:
    """Start with :meth:`start`; ``url``; :meth:`kubeconfig` writes a kubeconfig for it; :meth:`stop`."""

    def __init__(self, root: Path, namespace: str = "load", fail: dict[int, float] | None = None) -> None:
        self.root = root
        self.namespace = namespace
        self.fail = fail or {}  # runner index -> seconds after which its pod dies
        self.port = free_port()
        self.config_maps: dict[str, dict[str, Any]] = {}
        self.test_runs: dict[str, FakeTestRun] = {}
        self.calls: list[tuple[str, str]] = []
        self.tokens: set[str] = set()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKubernetes:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for run in self.test_runs.values():
            self._stop_runners(run)

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester",
                                                      "namespace": self.namespace}}]}))
        return path

    # -- the operator ----------------------------------------------------------------------------------------

    def _operate(self, name: str) -> None:
        run = self.test_runs[name]
        spec = run.body["spec"]
        for stage in ("initialized", "created"):
            time.sleep(0.3)
            run.stage = stage
        scripts = Path(tempfile.mkdtemp(prefix="k6-runner-", dir=self.root))
        for file, text in self.config_maps[spec["script"]["configMap"]["name"]]["data"].items():
            (scripts / file).write_text(text)
        env = {**os.environ, **{e["name"]: e["value"] for e in spec["runner"].get("env", [])}}
        total = int(spec["parallelism"])
        with self.lock:
            if run.deleted:
                return
            for index in range(1, total + 1):
                argv = [str(find_k6().path), "run", "--quiet", *segment_fragments(index, total),
                        *shlex.split(spec.get("arguments", "")), str(scripts / spec["script"]["configMap"]["file"]),
                        f"--address=127.0.0.1:{free_port()}", "--tag", f"instance_id={index}",
                        "--tag", f"testrun_name={name}"]
                log = open(self.root / f"{name}-{index}.log", "wb")  # noqa: SIM115 - the pod's log
                run.runners.append(Runner(index, subprocess.Popen(argv, env=env, stdout=log, stderr=log,
                                                                  cwd=scripts)))
            run.stage = "started"
        started = time.monotonic()
        while any(r.proc.poll() is None for r in run.runners):
            for r in run.runners:
                after = self.fail.get(r.index)
                if after is not None and time.monotonic() - started > after and r.proc.poll() is None:
                    r.proc.send_signal(signal.SIGKILL)
            time.sleep(0.1)
        if not run.deleted:
            run.stage = "stopped"
            time.sleep(0.3)
            run.stage = "finished"

    def _stop_runners(self, run: FakeTestRun) -> None:
        with self.lock:
            run.deleted = True
            for r in run.runners:
                if r.proc.poll() is None:
                    r.proc.kill()
                r.proc.wait(10)

    def _test_run(self, name: str) -> dict[str, Any]:
        run = self.test_runs[name]
        return {**run.body, "status": {"stage": run.stage}}

    def _jobs(self, selector: str) -> dict[str, Any]:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        items = []
        for name, run in self.test_runs.items():
            labels = {"app": "k6", "k6_cr": name, "runner": "true"}
            if any(labels.get(k) != v for k, v in wanted.items()):
                continue
            items += [{"metadata": {"name": f"{name}-{r.index}", "namespace": self.namespace, "labels": labels},
                       "status": r.job} for r in run.runners]
        return {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": items}

    # -- HTTP --------------------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _missing(self, what: str) -> None:
                self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                   "message": f"{what} not found", "code": 404})

            def _route(self) -> tuple[str, str | None, dict[str, list[str]]]:
                parts = urlsplit(self.path)
                api.calls.append((self.command, parts.path))
                api.tokens.add(self.headers.get("Authorization", ""))
                prefix = {f"/api/v1/namespaces/{api.namespace}/configmaps": "configmaps",
                          f"/apis/k6.io/v1alpha1/namespaces/{api.namespace}/testruns": "testruns",
                          f"/apis/batch/v1/namespaces/{api.namespace}/jobs": "jobs"}
                for path, kind in prefix.items():
                    if parts.path == path:
                        return kind, None, parse_qs(parts.query)
                    if parts.path.startswith(path + "/"):
                        return kind, parts.path[len(path) + 1:], parse_qs(parts.query)
                return "", None, {}

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length", 0))
                return dict(json.loads(self.rfile.read(length) or b"{}"))

            def do_POST(self) -> None:
                kind, _, _ = self._route()
                body = self._body()
                created = body["metadata"]["name"]
                if kind == "configmaps":
                    api.config_maps[created] = body
                elif kind == "testruns":
                    api.test_runs[created] = FakeTestRun(body)
                    threading.Thread(target=api._operate, args=(created,), daemon=True).start()
                else:
                    return self._missing(self.path)
                self._answer(201, body if kind == "configmaps" else api._test_run(created))

            def do_GET(self) -> None:
                kind, name, query = self._route()
                if kind == "testruns" and name in api.test_runs and not api.test_runs[name].deleted:
                    return self._answer(200, api._test_run(name))
                if kind == "jobs" and name is None:
                    return self._answer(200, api._jobs(query.get("labelSelector", [""])[0]))
                self._missing(self.path)

            def do_DELETE(self) -> None:
                kind, name, _ = self._route()
                self._body()
                if kind == "configmaps" and name in api.config_maps:
                    del api.config_maps[name]
                elif kind == "testruns" and name in api.test_runs and not api.test_runs[name].deleted:
                    api._stop_runners(api.test_runs[name])
                else:
                    return self._missing(self.path)
                self._answer(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        return Handler
