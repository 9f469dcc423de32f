"""The Celery app of bench/dispatchers.py's worker: pirn_like's task, and the knot bodies
of remote_workloads as plain Celery tasks for the engine-directly side.

Broker and result backend come from the worker's command line (JSON only, as the
tests' app).
"""

from __future__ import annotations

import remote_workloads as w
from _celery_app import make_app

from pirn_like.dispatchers import register_celery_task

app = make_app()
register_celery_task(app)
one = app.task(name="bench.one")(w.one)
inc = app.task(name="bench.inc")(w.inc)
burn = app.task(name="bench.burn")(w.burn)
total = app.task(name="bench.total")(w.total)
