"""The target model of the ``redis:`` section, apart from the collector so that the config loads without
redis-py (check-config, and the processes that run no Redis job)."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from exporter.config.base import JobTarget, TLSConfig
from exporter.config.units import Duration, as_redis_url

log = logging.getLogger("exporter.collectors.redis.collector")  # the collector's logger: its config warnings


class RedisTarget(JobTarget):
    url: SecretStr = SecretStr("redis://localhost:6379/0")
    username: str | None = None
    password: SecretStr | None = None
    tls: TLSConfig = Field(default_factory=TLSConfig)
    interval: Duration = 15.0
    timeout: Duration = 2.0
    key_patterns: list[str] = Field(default_factory=list)
    scan_budget: Annotated[int, Field(ge=0)] = 1000
    memory_samples: Annotated[int, Field(ge=0)] = 16
    queues: list[str] = Field(default_factory=list)

    @field_validator("url", mode="before")
    @classmethod
    def _redis_scheme(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        url = as_redis_url(raw)
        given, used = urlsplit(raw).scheme, urlsplit(url).scheme
        if used != given:
            log.warning("config_warning", extra={"fields": {
                "key": "redis.url",
                "msg": f"{given}:// is not a Redis URL scheme; using {used}:// "
                       f"(write {used}://host:port in REDIS_URL)"}})
        if used not in ("redis", "rediss", "unix"):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> RedisTarget:
        if "other" in self.key_patterns:
            raise ValueError("key pattern 'other' is reserved: keys matching no pattern are counted under it")
        if len(set(self.key_patterns)) != len(self.key_patterns):
            raise ValueError("key_patterns lists a pattern twice; a key belongs to the first pattern it matches")
        return self
