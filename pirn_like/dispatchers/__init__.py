"""Dispatchers decide where a knot's code runs.

The out-of-process ones (processes, Dask, Ray, Celery) load on first use and import
their engine only when opened, so ``import pirn_like`` stays light.
"""

from typing import TYPE_CHECKING

from pirn_like._exports import lazy_exports, publish
from pirn_like.dispatchers._local import LocalDispatcher
from pirn_like.dispatchers._thread import ThreadDispatcher

if TYPE_CHECKING:
    from pirn_like.dispatchers._celery import CeleryDispatcher, register_celery_task
    from pirn_like.dispatchers._dask import DaskDispatcher
    from pirn_like.dispatchers._process import ProcessDispatcher
    from pirn_like.dispatchers._ray import RayDispatcher
    from pirn_like.dispatchers._remote import RemoteOptions, set_worker_pickle_key

_LAZY = {
    "CeleryDispatcher": "pirn_like.dispatchers._celery",
    "register_celery_task": "pirn_like.dispatchers._celery",
    "DaskDispatcher": "pirn_like.dispatchers._dask",
    "ProcessDispatcher": "pirn_like.dispatchers._process",
    "RayDispatcher": "pirn_like.dispatchers._ray",
    "RemoteOptions": "pirn_like.dispatchers._remote",
    "set_worker_pickle_key": "pirn_like.dispatchers._remote",
}

__all__ = [
    "CeleryDispatcher",
    "DaskDispatcher",
    "LocalDispatcher",
    "ProcessDispatcher",
    "RayDispatcher",
    "RemoteOptions",
    "ThreadDispatcher",
    "register_celery_task",
    "set_worker_pickle_key",
]

publish(__name__, globals(), [n for n in __all__ if n not in _LAZY])
__getattr__ = lazy_exports(__name__, globals(), _LAZY)
