"""``bench --k6-operator N --kubeconfig FILE``: the run as a k6-operator ``TestRun`` on a cluster, created, followed
and cleaned up through the Kubernetes API (the ``kubernetes`` client, the ``k8s`` extra).

The lifecycle: the ConfigMap with the scripts and the ``TestRun`` (``k6.io/v1alpha1``) are created in the
kubeconfig context's namespace; the TestRun's ``status.stage`` is polled (initialization, initialized, created,
started, stopped, finished or error) while the run's requests so far are read from Prometheus for the progress
line; the runner Jobs (``<testrun>-<i>``, label ``k6_cr=<testrun>``) say which instance failed; then both objects
are deleted (the operator's Jobs and pods with the TestRun) unless ``--keep``. The calls it makes are exactly the
RBAC rules docs/load.md lists. The run is then judged from Prometheus like ``--segments``
(:mod:`exporter.load.distributed`). Tested against a small API server that plays k6-operator
(tests/k8s_api.py); no cluster runs in the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from exporter.load.distributed import InstanceEnd, InstancesRan
from exporter.load.distributed_run import segment_of
from exporter.load.k6_binary import K6
from exporter.load.operator import dump, testrun_manifest
from exporter.load.plan import RunPlan
from exporter.load.runner import LiveSample, stage_at
from exporter.load.segments import SYSTEM_TAGS
from exporter.reports.model import ReportError
from exporter.reports.prometheus import PrometheusClient
from exporter.secrets import mask_url, safe_url

GROUP, VERSION, PLURAL = "k6.io", "v1alpha1", "testruns"
FINAL_STAGES = ("finished", "error")
POLL_SECONDS = 2.0
PART_OF = {"app.kubernetes.io/part-of": "perf-exporter"}


class KubernetesError(RuntimeError):
    """The cluster could not be used; ``str()`` says what failed, without credentials."""


@dataclass
class Cluster:
    api: Any  # kubernetes.client.ApiClient
    namespace: str
    server: str

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    @property
    def batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.api)


def connect(kubeconfig: Path) -> Cluster:
    """A client for the kubeconfig's current context, in its namespace (``default`` when it names none)."""
    try:
        from kubernetes import config
    except ImportError:
        raise KubernetesError("--kubeconfig needs the Kubernetes client: pip install 'perf-exporter[k8s]'") from None
    try:
        _, active = config.list_kube_config_contexts(config_file=str(kubeconfig))
        api = config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)
    except Exception as exc:  # the client raises ConfigException, OSError, yaml and key errors alike
        raise KubernetesError(f"--kubeconfig {kubeconfig}: {mask_url(str(exc)) or type(exc).__name__}") from None
    namespace = str((active or {}).get("context", {}).get("namespace") or "default")
    return Cluster(api, namespace, safe_url(str(api.configuration.host)))


def _api_error(what: str, exc: Exception) -> KubernetesError:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    return KubernetesError(f"{what}: {status} {reason}" if status else f"{what}: {mask_url(str(reason))}")


def judged_manifest(plan: RunPlan, parallelism: int, run_id: str, env: dict[str, str], name: str,
                    namespace: str) -> list[dict[str, Any]]:
    """The ConfigMap and TestRun of a run perf-exporter judges: the remote-write settings in the runners'
    environment, the run id and k6's system tags on every sample, and no thresholds (a runner's share of the
    load is not judged on its own)."""
    runners = dataclasses.replace(plan, env={**plan.env, **env, "THRESHOLDS": "{}"})
    objects = testrun_manifest(runners, parallelism, None, namespace, name, run_id,
                               ["--out", "experimental-prometheus-rw", "--system-tags", SYSTEM_TAGS])
    for obj in objects:
        obj["metadata"]["labels"]["perf-exporter/run-id"] = run_id
    return objects


def _stage(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("stage") or "")


def _job_states(jobs: Any, name: str) -> dict[int, str]:
    """Each runner's Job by its index (``<testrun>-<i>``): ``job failed``, ``job succeeded`` or ``job running``."""
    out: dict[int, str] = {}
    for job in jobs.items or []:
        suffix = str(job.metadata.name).removeprefix(f"{name}-")
        if not suffix.isdigit():
            continue
        status = job.status
        state = ("job failed" if status and status.failed else "job succeeded" if status and status.succeeded
                 else "job running")
        out[int(suffix)] = state
    return out


class LiveRequests:
    """The run's VUs and requests so far, from Prometheus, for the progress line."""

    def __init__(self, query_url: str, run_id: str) -> None:
        self.client = PrometheusClient(query_url, timeout=5)
        self.run_id = run_id
        self.previous: tuple[float, float] | None = None

    def sample(self, elapsed: float, stage: str) -> LiveSample:
        def total(expr: str) -> float:
            try:
                return sum(v for _, v in self.client.vector(expr, time.time()))
            except ReportError:
                return 0.0

        requests = total(f'sum(k6_http_reqs_total{{testid="{self.run_id}"}})')
        vus = total(f'sum(k6_vus{{testid="{self.run_id}"}})')
        now = time.monotonic()
        rps = 0.0
        if self.previous is not None and now > self.previous[0]:
            rps = max(0.0, (requests - self.previous[1]) / (now - self.previous[0]))
        self.previous = (now, requests)
        return LiveSample(elapsed=elapsed, stage=stage, vus=int(vus), requests=int(requests),
                          requests_per_second=rps, p95_ms=None, error_rate=None, dropped_iterations=0)

    def close(self) -> None:
        self.client.close()


@dataclass
class TestRunRunner:
    """The instances as the runner pods of a k6-operator TestRun."""

    cluster: Cluster
    query_url: str
    keep: bool
    stream: TextIO
    poll_seconds: float = POLL_SECONDS
    mode = "k6-operator"

    def _say(self, text: str) -> None:
        self.stream.write(f"bench: {text}\n")
        self.stream.flush()

    async def run(self, k6: K6, plan: RunPlan, total: int, run_id: str, env: dict[str, str], out: Path,
                  on_sample: Callable[[LiveSample], None] | None, timeout: float | None) -> InstancesRan:
        name = f"perf-{plan.scenario.name}-{run_id.rsplit('-', 1)[-1]}"
        config_map, test_run = judged_manifest(plan, total, run_id, env, name, self.cluster.namespace)
        manifest = out / f"{plan.scenario.name}.testrun.yaml"
        manifest.write_text(dump([config_map, test_run]))
        await asyncio.to_thread(self._create, config_map, test_run)
        self._say(f"created configmap/{config_map['metadata']['name']} and testrun/{name} in namespace "
                  f"{self.cluster.namespace} at {self.cluster.server} (manifest: {manifest})")
        live = LiveRequests(self.query_url, run_id)
        stopped: str | None = None
        started_at = ended_at = None
        stage = ""
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                obj = await asyncio.to_thread(self._get, name)
                now_stage = _stage(obj)
                if now_stage != stage:
                    stage = now_stage
                    self._say(f"testrun/{name}: stage {stage or '(none yet)'}")
                if stage == "started" and started_at is None:
                    started_at = time.time()
                if stage in ("stopped", *FINAL_STAGES) and ended_at is None:
                    ended_at = time.time()
                if stage in FINAL_STAGES:
                    break
                if started_at is not None and on_sample is not None and stage == "started":
                    elapsed = time.time() - started_at
                    on_sample(await asyncio.to_thread(live.sample, elapsed, stage_at(plan, elapsed)))
                if deadline is not None and time.monotonic() > deadline:
                    stopped = f"the run passed K6_TIMEOUT ({timeout:g}s): testrun/{name} deleted"
                    break
                await asyncio.sleep(self.poll_seconds)
            ended_at = ended_at or time.time()
            jobs = await asyncio.to_thread(self._jobs, name)
        finally:
            live.close()
            await asyncio.to_thread(self._clean_up, name, config_map["metadata"]["name"], stopped is not None)
        problems = [f"testrun/{name} ended in stage error (kubectl describe testrun/{name} -n "
                    f"{self.cluster.namespace})"] if stage == "error" else []
        ends = [InstanceEnd(i, segment_of(i, total), None, jobs.get(i, "no job")) for i in range(1, total + 1)]
        begun = started_at if started_at is not None else ended_at
        return InstancesRan(ends, begun, max(0.0, ended_at - begun), stopped=stopped, log_path=manifest,
                            problems=tuple(problems))

    def _create(self, config_map: dict[str, Any], test_run: dict[str, Any]) -> None:
        from kubernetes import client

        ns = self.cluster.namespace
        try:
            self.cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
                api_version="v1", kind="ConfigMap", metadata=client.V1ObjectMeta(**config_map["metadata"]),
                data=config_map["data"]))
        except Exception as exc:  # ApiException, or the connection failing
            raise _api_error(f"could not create configmap/{config_map['metadata']['name']} in namespace {ns} at "
                             f"{self.cluster.server}", exc) from None
        try:
            self.cluster.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, test_run)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.cluster.core.delete_namespaced_config_map(config_map["metadata"]["name"], ns)
            raise _api_error(f"could not create testrun/{test_run['metadata']['name']} in namespace {ns} (is "
                             f"k6-operator installed?)", exc) from None

    def _get(self, name: str) -> dict[str, Any]:
        try:
            return dict(self.cluster.custom.get_namespaced_custom_object(GROUP, VERSION, self.cluster.namespace,
                                                                         PLURAL, name))
        except Exception as exc:
            raise _api_error(f"could not read testrun/{name}", exc) from None

    def _jobs(self, name: str) -> dict[int, str]:
        try:
            jobs = self.cluster.batch.list_namespaced_job(self.cluster.namespace,
                                                          label_selector=f"app=k6,k6_cr={name},runner=true")
        except Exception as exc:
            raise _api_error(f"could not list the runner jobs of testrun/{name}", exc) from None
        return _job_states(jobs, name)

    def _clean_up(self, name: str, config_map: str, stop: bool) -> None:
        ns = self.cluster.namespace
        if self.keep and not stop:
            self._say(f"kept testrun/{name} and configmap/{config_map} (kubectl delete -n {ns} testrun/{name} "
                      f"configmap/{config_map})")
            return
        failed = []
        try:
            self.cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name,
                                                                propagation_policy="Background")
        except Exception as exc:
            failed.append(str(_api_error(f"testrun/{name}", exc)))
        try:
            self.cluster.core.delete_namespaced_config_map(config_map, ns)
        except Exception as exc:
            failed.append(str(_api_error(f"configmap/{config_map}", exc)))
        if failed:
            self._say("could not delete " + "; ".join(failed))
        else:
            self._say(f"deleted testrun/{name} (its jobs and pods with it) and configmap/{config_map}")
