"""Backend URLs: parsing, and redaction for messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = ["BackendURL", "redact"]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


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
