"""``python -m exporter.demo``: the demo target as ``run --demo`` starts it.

Unlike ``perf-exporter demo``, it reads the PostgreSQL DSN and Redis URL from the environment
(``DEMO_DATABASE_URL``, ``DEMO_REDIS_URL``), so no password shows in the process list.
"""

import argparse
import os
import sys

from exporter.demo.server import DEFAULT_LISTEN, serve_demo
from exporter.logs import setup_logging

parser = argparse.ArgumentParser(prog="python -m exporter.demo")
parser.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN)
parser.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"])
parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])
args = parser.parse_args()
setup_logging(args.log_level, args.log_format)
sys.exit(serve_demo(args.listen, os.environ.get("DEMO_DATABASE_URL") or None,
                    os.environ.get("DEMO_REDIS_URL") or None))
