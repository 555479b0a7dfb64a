"""Which jobs a replica runs: kube-state-metrics' model, ``--shard`` and ``--total-shards``.

Every replica reads the same config. A job (one target of one kind) belongs to shard ``hash(key) mod total``,
with a hash that is the same in every process and release, so each job runs in exactly one replica and stays
there as long as the number of replicas does. A StatefulSet's pod ordinal is a natural ``--shard``: the flag
takes the pod's name too (``perf-exporter-2`` is shard 2), which the downward API gives on every Kubernetes
version (docs/configuration.md, "Probe workers and sharding").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_ORDINAL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-(\d+)$")


def shard_of(key: str, total: int) -> int:
    """The shard of a job key (``section/name``) among ``total``."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % total


@dataclass(frozen=True)
class Shard:
    index: int = 0
    total: int = 1

    def owns(self, key: str) -> bool:
        return self.total == 1 or shard_of(key, self.total) == self.index

    @classmethod
    def from_flags(cls, shard: str | None, total: str | None) -> Shard:
        """The two flags as given (strings, or None when absent); a ValueError naming the flag otherwise."""
        if shard is None and total is None:
            return cls()
        if shard is None or total is None:
            given, missing = ("--shard", "--total-shards") if total is None else ("--total-shards", "--shard")
            raise ValueError(f"{given} needs {missing} too: give both (--shard N --total-shards M, "
                             f"0 <= N < M), or neither to run every job")
        try:
            count = int(total)
        except ValueError:
            raise ValueError(f"--total-shards: expected a whole number of replicas (1 or more), got {total!r}") \
                from None
        if count < 1:
            raise ValueError(f"--total-shards: expected a whole number of replicas (1 or more), got {total!r}")
        ordinal = _ORDINAL.match(shard)
        try:
            index = int(ordinal.group(2)) if ordinal else int(shard)
        except ValueError:
            raise ValueError(f"--shard: expected a whole number from 0 to {count - 1} (--total-shards {count}) or a "
                             f"StatefulSet pod's name ending in it, got {shard!r}") from None
        if not 0 <= index < count:
            raise ValueError(f"--shard: expected a whole number from 0 to {count - 1} (--total-shards {count}), "
                             f"got {index}")
        return cls(index, count)
