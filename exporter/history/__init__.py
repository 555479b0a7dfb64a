"""Run history: every ``bench`` and ``report`` run stored (SQLite by default, or PostgreSQL), baselines, and the
``baseline``, ``compare``, ``history`` and ``sla`` commands built on them."""
