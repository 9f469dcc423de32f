"""The Celery app of the test workers: ``celery -A _celery_app -b URL --result-backend URL
worker``. Broker and backend come from the command line, so the tests' client app is
``make_app()`` with the same URLs.

A worker started with ``PIRN_LIKE_TEST_CELERY_KEY`` (hex) registers the task with that
pickle key, so it runs signed cloudpickled code, and only signed payloads.
"""

from __future__ import annotations

import os

from celery import Celery

from pirn_like.dispatchers._celery import register_celery_task

KEY_ENV = "PIRN_LIKE_TEST_CELERY_KEY"


def make_app(url: str | None = None) -> Celery:
    """A JSON-only app: Celery refuses to send or accept anything else."""
    app = Celery("pirn_like_tests", broker=url, backend=url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
    )
    return app


app = make_app()
_key = os.environ.get(KEY_ENV)
register_celery_task(app, pickle_key=None if _key is None else bytes.fromhex(_key))
