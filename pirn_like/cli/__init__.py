"""The ``pirn-like`` command line: run, inspect and serve tapestries.

Needs typer and rich (``pip install 'pirn-like[cli]'``); ``import pirn_like`` never
loads this package. ``app`` is the Typer application behind the ``pirn-like`` script.
"""

from pirn_like.cli._app import app

__all__ = ["app"]
