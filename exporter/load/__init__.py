"""Load tests and benchmarks on k6: the guide's scenarios as k6 scripts (``scenarios/``), and their
orchestration by ``perf-exporter bench``: finding k6 (:mod:`.k6_binary`), the scenario catalog
(:mod:`.catalog`), k6's options and thresholds from ``targets:`` (:mod:`.plan`), running k6 with its results read
back live (:mod:`.runner`), the rest of the platform measured meanwhile (:mod:`.platform`), the live display
(:mod:`.progress`), the report files (:mod:`.report`) and the k6-operator manifest (:mod:`.operator`). The
statistics and the verdict are pure functions in :mod:`exporter.load.stats` and
:mod:`exporter.load.verdict`.
"""
