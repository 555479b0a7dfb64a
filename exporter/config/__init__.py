"""The YAML configuration, by concern.

- :mod:`exporter.config.units`: durations, ratios, URLs and names as config values;
- :mod:`exporter.config.base`: the base model and :class:`~exporter.config.base.JobTarget`, which every job
  kind's target model extends;
- :mod:`exporter.config.targets`: the guide's performance targets (``targets:``);
- :mod:`exporter.config.schema`: the whole file, one section per registered job kind;
- :mod:`exporter.config.loading`: reading YAML, ``${VAR}`` expansion, secret files, and error text;
- :mod:`exporter.config.masking`: showing a config without its secrets.
"""
