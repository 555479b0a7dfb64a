"""The whole config file: ``targets:`` and one list of targets per registered job kind.

The root model is built from the job registry, so a new kind's section needs no edit here.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, create_model, model_validator

from exporter.config.base import JobTarget, Model, check_unique
from exporter.config.targets import Targets
from exporter.jobs import JobKind, SloArea
from exporter.registry import areas, kinds


class Config(Model):
    """``targets:`` plus, as fields named after their sections, the targets of every registered job kind."""

    targets: Targets = Field(default_factory=Targets)

    def section(self, name: str) -> list[JobTarget]:
        entries: list[JobTarget] = getattr(self, name, [])
        return entries

    def jobs(self) -> list[tuple[JobKind[Any], JobTarget]]:
        """Every (kind, target) the config asks for, in registry order."""
        return [(kind, entry) for kind in kinds() if kind.section in type(self).model_fields
                for entry in self.section(kind.section)]

    def areas(self) -> list[SloArea]:
        """The SLO area of every registered kind that has one, in registry order."""
        return list(areas())

    def configured_areas(self) -> list[tuple[str, SloArea]]:
        """(section, area) of each kind with an area and at least one target here: their SLI metrics should
        exist."""
        return [(kind.section, kind.area) for kind in kinds() if kind.area is not None and self.section(kind.section)]

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for kind in kinds():
            if kind.section in type(self).model_fields:
                check_unique([t.name for t in self.section(kind.section)], f"{kind.section} target")
        return self

    @model_validator(mode="after")
    def _entries_agree_with_targets(self) -> Config:
        """A target model may check itself against ``targets:`` (``check_targets(targets) -> [problem]``)."""
        problems = [f"{kind.section}[{i}].{problem}" for kind, entries in
                    ((k, self.section(k.section)) for k in kinds() if k.section in type(self).model_fields)
                    for i, entry in enumerate(entries)
                    for problem in getattr(entry, "check_targets", lambda _: [])(self.targets)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


@functools.cache
def _model_for(registered: tuple[JobKind[Any], ...]) -> type[Config]:
    sections: dict[str, Any] = {kind.section: (list[kind.target], Field(default_factory=list))  # type: ignore[name-defined]
                                for kind in registered}
    model: type[Config] = create_model("Config", __base__=Config, **sections)
    return model


def config_model() -> type[Config]:
    """The root model for the job kinds registered now."""
    return _model_for(tuple(kinds()))
