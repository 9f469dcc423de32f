"""Backend URLs: parsing, and redaction for messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = ["BackendURL", "redact"]


def redact(url: str) -> str:
    """``url`` with any password (in the user info or a ``password=`` query
    parameter) replaced by ``***``, for error messages and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hosts}"
    query = "&".join(
        f"{key}=***" if key.lower() in _SECRET_PARAMETERS else f"{key}={value}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    if netloc == parts.netloc and query == parts.query:
        return url  # urlunsplit would turn sqlite:///x into sqlite:/x
    return urlunsplit(parts._replace(netloc=netloc, query=query))


_SECRET_PARAMETERS = frozenset({"password", "secret", "token", "aws_secret_access_key"})


@dataclass(frozen=True, slots=True)
class BackendURL:
    """A backend URL taken apart: ``scheme://[user[:password]@]host[:port]/path?query``."""

    raw: str
    scheme: str
    host: str | None
    port: int | None
    username: str | None
    password: str | None
    path: str
    """Percent-decoded; for ``sqlite:///rel/x.db`` this is ``rel/x.db``, for
    ``sqlite:////abs/x.db`` it is ``/abs/x.db``."""
    query: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> BackendURL:
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc == "" and path.startswith("/"):
            path = path[1:]  # scheme:///relative or scheme:////absolute, as SQLAlchemy does
        return cls(
            raw=url,
            scheme=parts.scheme.lower(),
            host=parts.hostname,
            port=parts.port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            path=path,
            query=dict(parse_qsl(parts.query)),
        )

    @property
    def redacted(self) -> str:
        return redact(self.raw)
