"""``python -m pirn_like.cli``: the same as the ``pirn-like`` script."""

from pirn_like.cli._app import app

app(prog_name="pirn-like")
