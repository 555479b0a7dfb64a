"""Reports that explain: the report model, its sources (Prometheus, a load run) and renderers (json, md, html)."""
