"""The explorer's gate: read-only methods, and a token on every request.

A pure ASGI middleware, so it guards every path (unknown ones included) before
routing. The token comes as ``Authorization: Bearer <token>``, as the cookie this
gate sets, or once as ``?token=``: that request is answered with a redirect to the
same page without the token (so it leaves the address bar and history) and an
HttpOnly, SameSite=Strict cookie carrying it.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pirn_like.core._signing import constant_time_equal

__all__ = ["COOKIE", "Gate"]

COOKIE = "pirn_ui_token"
_READ_ONLY = frozenset({"GET", "HEAD"})


class Gate:
    """Refuses anything but GET/HEAD (405) and, when ``token`` is set, any request
    that does not carry it (401)."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = self._refusal(scope)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        if scope["method"] not in _READ_ONLY:
            return PlainTextResponse(
                "the run explorer is read-only: only GET and HEAD are allowed",
                status_code=405,
                headers={"Allow": "GET, HEAD"},
            )
        token = self.token
        if token is None:
            return None
        # A right ?token= always redirects, so the token never stays in an address.
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for name, value in query if name == "token"]
        if given and self._matches(given[-1]):
            return _remember(scope, [(n, v) for n, v in query if n != "token"], token)
        headers = Headers(scope=scope)
        if self._matches(_bearer(headers.get("authorization"))) or self._matches(
            _cookie(headers.get("cookie"))
        ):
            return None
        return PlainTextResponse(
            "missing or wrong token: send 'Authorization: Bearer <token>' or open the "
            "explorer once with '?token=<token>' (the token is logged when it starts)",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    def _matches(self, given: str | None) -> bool:
        return (
            given is not None and self.token is not None and constant_time_equal(given, self.token)
        )


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, given = authorization.partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def _cookie(header: str | None) -> str | None:
    if header is None:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:  # a malformed Cookie header is just no cookie
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _remember(scope: Scope, query: list[tuple[str, str]], token: str) -> Response:
    """Redirect to the page without ``token`` in its address, setting the cookie."""
    root, path = scope.get("root_path", ""), scope["path"]
    # Starlette keeps the mount prefix in a mounted app's path; other servers may not.
    target = path if path.startswith(root) else root + path
    if query:
        target += "?" + urlencode(query)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return response
