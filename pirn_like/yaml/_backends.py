"""Backend URLs as ``dump_pipeline`` writes them: never with a secret in them.

A password (in the user info, or a ``password``/``secret``/``token`` query parameter)
is replaced by ``${<KEY>_<PART>}`` (``${HISTORY_PASSWORD}``), which ``load_pipeline``
reads back from the environment; a URL that is already redacted (``***``) cannot be
written and is refused.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pirn_like._errors import PipelineError

__all__ = ["backend_url"]

# The query parameters ``backends._url.redact`` treats as secrets.
_SECRET_QUERY = frozenset({"password", "secret", "token", "aws_secret_access_key"})


def _env_ised(key: str, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        user, secret = userinfo.split(":", 1)
        if not secret.startswith("${"):
            netloc = f"{user}:${{{key.upper()}_PASSWORD}}@{hosts}"
    query = "&".join(
        f"{name}=${{{key.upper()}_{name.upper()}}}"
        if name.lower() in _SECRET_QUERY and not value.startswith("${")
        else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    if netloc == parts.netloc and query == parts.query:
        return url  # urlunsplit would turn sqlite:///x into sqlite:/x
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def backend_url(key: str, backend: object, given: str | None) -> str:
    """The URL to write for the ``key`` backend: ``given``, else the backend's ``url``."""
    url = given if given is not None else getattr(backend, "url", None)
    if not isinstance(url, str):
        raise PipelineError(
            f"{key}: cannot tell the URL of {type(backend).__name__}; pass it as "
            f"dump_pipeline(..., {key}='scheme://...')"
        )
    if "***" in url:
        raise PipelineError(
            f"{key}: the URL {url!r} has a redacted secret, which cannot be written; pass "
            f"dump_pipeline(..., {key}=...) with the secret as ${{VAR}}"
        )
    return _env_ised(key, url)
