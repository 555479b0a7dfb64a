"""The bundled Tripo04OS demo target (``perf-exporter demo``, ``perf-exporter run --demo``).

- :mod:`.server` runs it; :mod:`.app` is the ASGI app (API endpoints, health, faults);
  :mod:`.jaeger_routes` serves its traces through the Jaeger query API.
- :mod:`.spans` (trace context, span recording, the trace buffer) and :mod:`.jaeger_format` (Jaeger api_v3 and
  v1 JSON) are pure: no I/O.
- :mod:`.storage` (PostgreSQL or memory) and :mod:`.cache` (Redis or memory) hold its data; :mod:`.faults` holds
  the settable faults and the latency model.
- :mod:`.launcher` starts it next to the daemon for ``run --demo``, with the shipped ``tripo04os.yaml``.
"""
