"""HMAC-SHA256 request signing: headers that sign a body, and their verification.

Standard library only. Every comparison of secrets or signatures goes through
``hmac.compare_digest`` (``constant_time_equal``), so how long a check takes says
nothing about how much of a guess was right.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pirn_like._errors import SignatureError

__all__ = ["Signature", "SignaturePreset", "constant_time_equal"]

_MAX_HEADER = 1024
"""Longest signature header read; a longer one is refused without parsing it."""


class SignaturePreset(enum.StrEnum):
    """How a signature travels in a request's headers, after the services that use it."""

    PIRN_LIKE = "pirn_like"
    """``X-Pirn-Like-Signature: t=<unix seconds>,v1=<hex HMAC of b"<t>." + body>``."""
    GITHUB = "github"
    """``X-Hub-Signature-256: sha256=<hex HMAC of body>``. No timestamp, so no replay
    window: GitHub's ``X-GitHub-Delivery`` id keeps a replayed delivery from running
    twice."""
    STRIPE = "stripe"
    """``Stripe-Signature: t=<unix seconds>,v1=<hex>``, signed as ``PIRN_LIKE``."""
    SLACK = "slack"
    """``X-Slack-Request-Timestamp: <t>`` and ``X-Slack-Signature: v0=<hex HMAC of
    b"v0:<t>:" + body>``."""

    @property
    def header(self) -> str:
        """The header that carries the signature."""
        return _HEADERS[self]

    @property
    def timestamped(self) -> bool:
        """True when signatures carry a timestamp, so old ones can be refused."""
        return self is not SignaturePreset.GITHUB

    @property
    def delivery_header(self) -> str | None:
        """A header in which the sender names each delivery (the same on a resend)."""
        return "X-GitHub-Delivery" if self is SignaturePreset.GITHUB else None


_HEADERS = {
    SignaturePreset.PIRN_LIKE: "X-Pirn-Like-Signature",
    SignaturePreset.GITHUB: "X-Hub-Signature-256",
    SignaturePreset.STRIPE: "Stripe-Signature",
    SignaturePreset.SLACK: "X-Slack-Signature",
}
_SLACK_TIMESTAMP = "X-Slack-Request-Timestamp"


def constant_time_equal(given: str | bytes, expected: str | bytes) -> bool:
    """``given == expected``, in a time that does not depend on where they differ."""
    return hmac.compare_digest(_bytes(given), _bytes(expected))


@dataclass(frozen=True, slots=True, init=False)
class Signature:
    """An HMAC-SHA256 secret and the preset saying how signatures travel.

    ``Signature("s3cret")`` signs and verifies ``X-Pirn-Like-Signature`` headers;
    ``Signature(secret, "github")`` GitHub's ``X-Hub-Signature-256``. A timestamped
    signature is refused when its time is more than ``tolerance`` seconds from
    ``clock()`` (either way), so a captured request cannot be replayed later.
    """

    secret: bytes = field(repr=False)
    preset: SignaturePreset
    tolerance: float
    clock: Callable[[], float] = field(repr=False, compare=False)

    def __init__(
        self,
        secret: str | bytes,
        preset: SignaturePreset | str = SignaturePreset.PIRN_LIKE,
        *,
        tolerance: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = _bytes(secret) if isinstance(secret, str | bytes) else b""
        if not key:
            raise ValueError("a Signature needs a non-empty secret (str or bytes)")
        try:
            chosen = SignaturePreset(preset)
        except ValueError:
            names = [p.value for p in SignaturePreset]
            raise ValueError(
                f"unknown signature preset {preset!r}; choose one of {names}"
            ) from None
        if not tolerance > 0:
            raise ValueError(f"tolerance must be a positive number of seconds, not {tolerance!r}")
        object.__setattr__(self, "secret", key)
        object.__setattr__(self, "preset", chosen)
        object.__setattr__(self, "tolerance", float(tolerance))
        object.__setattr__(self, "clock", clock)

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """The headers that sign ``body`` (timestamped ``clock()`` unless given)."""
        t = int(self.clock()) if timestamp is None else int(timestamp)
        header = self.preset.header
        match self.preset:
            case SignaturePreset.GITHUB:
                return {header: "sha256=" + self._digest(body)}
            case SignaturePreset.SLACK:
                return {_SLACK_TIMESTAMP: str(t), header: "v0=" + self._digest(_slack(t, body))}
            case _:
                return {header: f"t={t},v1={self._digest(_dotted(t, body))}"}

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``SignatureError`` unless ``headers`` sign ``body`` within the window."""
        value = _header(headers, self.preset.header)
        if value is None:
            raise SignatureError(f"the request has no {self.preset.header} header")
        if len(value) > _MAX_HEADER:
            raise SignatureError(f"the {self.preset.header} header is too long")
        match self.preset:
            case SignaturePreset.GITHUB:
                self._check(value.removeprefix("sha256="), body, prefixed=value[:7] == "sha256=")
                return
            case SignaturePreset.SLACK:
                t = _timestamp(_header(headers, _SLACK_TIMESTAMP), _SLACK_TIMESTAMP)
                self._check(value.removeprefix("v0="), _slack(t, body), prefixed=value[:3] == "v0=")
            case _:
                t, candidates = self._parse_pairs(value)
                signed = _dotted(t, body)
                # Senders rotating secrets send one v1 per secret: any may match.
                if not any(constant_time_equal(c, self._digest(signed)) for c in candidates):
                    raise SignatureError(
                        f"the {self.preset.header} signature does not match the body"
                    )
        self._check_age(t)

    def request_id(self, headers: Mapping[str, str]) -> str | None:
        """What names this signed request the same way on every copy of it.

        The sender's delivery id where the preset has one; for timestamped presets the
        signature itself (time and HMAC), so a replay inside the window is recognised.
        """
        delivery = self.preset.delivery_header
        if delivery is not None:
            return _header(headers, delivery)
        if not self.preset.timestamped:
            return None
        value = _header(headers, self.preset.header)
        if self.preset is SignaturePreset.SLACK and value is not None:
            value = f"{_header(headers, _SLACK_TIMESTAMP)}:{value}"
        return value

    def _digest(self, message: bytes) -> str:
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def _check(self, given: str, message: bytes, *, prefixed: bool) -> None:
        # Compare even when the prefix is wrong, so both failures take as long.
        matches = constant_time_equal(given, self._digest(message))
        if not (prefixed and matches):
            raise SignatureError(f"the {self.preset.header} signature does not match the body")

    def _parse_pairs(self, value: str) -> tuple[int, list[str]]:
        t: str | None = None
        candidates: list[str] = []
        for part in value.split(","):
            key, _, item = part.strip().partition("=")
            if key == "t":
                t = item
            elif key == "v1":
                candidates.append(item)
        if not candidates:
            raise SignatureError(
                f"the {self.preset.header} header has no v1=<hex> signature; "
                "expected 't=<unix seconds>,v1=<hex>'"
            )
        return _timestamp(t, f"{self.preset.header} t="), candidates

    def _check_age(self, t: int) -> None:
        age = self.clock() - t
        if abs(age) > self.tolerance:
            when = f"{age:.0f}s old" if age > 0 else f"{-age:.0f}s in the future"
            raise SignatureError(
                f"the signature's timestamp is {when}; the replay window is "
                f"{self.tolerance:g}s: sign each request when sending it (and check the clocks)"
            )


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value


def _dotted(t: int, body: bytes) -> bytes:
    return f"{t}.".encode() + body


def _slack(t: int, body: bytes) -> bytes:
    return f"v0:{t}:".encode() + body


def _timestamp(value: str | None, where: str) -> int:
    if value is None:
        raise SignatureError(f"the request's signature has no timestamp ({where})")
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise SignatureError(f"the signature timestamp ({where}) is not unix seconds: {value!r}")
    return int(text)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]`` ignoring case (Starlette's and httpx's headers already do)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
