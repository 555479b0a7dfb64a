"""perf-exporter: synthetic probes and profiling collectors for Tripo04OS, as Prometheus metrics."""

__version__ = "0.1.0"
