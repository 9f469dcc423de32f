"""What the ValKey backends share: their URLs and how they configure a glide client."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict
from urllib.parse import quote

from pirn_like.backends._url import BackendURL

if TYPE_CHECKING:
    from glide import GlideClientConfiguration

__all__ = ["ValKeyAddress", "ValKeyServer", "parse_valkey_url"]

_SCHEMES = {"valkey": False, "redis": False, "valkeys": True, "rediss": True}
"""URL scheme -> whether it means TLS."""


class ValKeyAddress(TypedDict):
    """What a ValKey URL says, as the backends' constructors take it."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    use_tls: bool


def parse_valkey_url(url: str) -> ValKeyAddress:
    """``valkey://[user[:password]@]host[:port][/db]``; ``redis://`` means the same,
    ``valkeys://`` and ``rediss://`` use TLS. ``ValueError`` for any other URL."""
    parsed = BackendURL.parse(url)
    db = parsed.path.strip("/") or "0"
    if parsed.scheme not in _SCHEMES or not db.isdigit() or parsed.query:
        raise ValueError(
            f"{parsed.redacted!r} is not a ValKey URL of the form "
            "valkey://[user[:password]@]host[:port][/db] (or redis://, valkeys://, rediss://)"
        )
    return ValKeyAddress(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 6379,
        db=int(db),
        username=parsed.username,
        password=parsed.password,
        use_tls=_SCHEMES[parsed.scheme],
    )


class ValKeyServer:
    """A ValKey server, how to log in to it and how long one request may take."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        db: int,
        username: str | None,
        password: str | None,
        use_tls: bool,
        timeout: float,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._host = host
        self._port = port
        self._db = db
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._timeout_ms = max(1, round(timeout * 1000))

    @property
    def url(self) -> str:
        """The server's URL, password included (the backends redact it)."""
        scheme = "valkeys" if self._use_tls else "valkey"
        login = quote(self._username or "", safe="")
        login += f":{quote(self._password, safe='')}" if self._password is not None else ""
        netloc = f"{login}@" if login else ""
        netloc += f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{netloc}:{self._port}/{self._db}"

    def client_config(
        self, subscriptions: GlideClientConfiguration.PubSubSubscriptions | None = None
    ) -> GlideClientConfiguration:
        """A glide client configuration for this server (glide is imported already: the
        backend checked for it when it opened)."""
        from glide import GlideClientConfiguration, NodeAddress, ServerCredentials

        credentials = (
            None
            if self._password is None
            else ServerCredentials(password=self._password, username=self._username)
        )
        return GlideClientConfiguration(
            [NodeAddress(self._host, self._port)],
            use_tls=self._use_tls,
            credentials=credentials,
            database_id=self._db,
            request_timeout=self._timeout_ms,
            pubsub_subscriptions=subscriptions,
        )
