"""The seed's import path for the Dask dispatcher: ``pirn_like.dispatchers.DaskDispatcher``."""

from pirn_like.dispatchers._dask import DaskDispatcher

__all__ = ["DaskDispatcher"]
