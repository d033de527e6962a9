"""The checks every request passes before any route runs: the bearer token, the body's type and framing, its size.

A plain ASGI middleware (no BentoML): the FastAPI app has it around its routes, and the BentoML service has it around
BentoML's own pages (the OpenAPI document and Swagger), so one rule holds for every path.
"""

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..core.settings import ServiceSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Answer anyone, token or not: orchestrators probe these, and Prometheus scrapes /metrics.
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
JSON_TYPES = ("application/json",)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers that say the request came through a proxy: then it did not come straight from a process on this machine.
FORWARDING_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host")


def problem(status: int, error: str, field: str, text: str) -> tuple[int, bytes]:
    """A refusal in the JSON shape of every 4xx/5xx of the service."""
    return status, json.dumps({"error": error, "detail": [{"field": field, "problem": text}]}).encode()


def forwarded(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request carries any proxy header."""
    return any(name.lower() in FORWARDING_HEADERS for name, _ in headers)


class RequestGuard:
    """Refuses, before the route runs: a missing or wrong bearer token when one is set (401; the probes and /metrics
    stay open), a body that is not JSON (415), a request with both Content-Length and Transfer-Encoding (400, as RFC
    9112 allows), and a declared length over the limit (413). Paths in `skip` are left to the app behind."""

    def __init__(self, app: ASGIApp, settings: ServiceSettings, skip: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = settings.max_body_bytes
        token = settings.auth_token
        self.token = token.get_secret_value().encode() if token is not None else None
        self.skip = frozenset(skip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, body = refusal
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status in (400, 413):
            headers.append((b"connection", b"close"))  # the rest of that body is never read
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def check(self, scope: Scope) -> tuple[int, bytes] | None:
        """The refusal for this request, or None when it may go on."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), value)
        if self.token is not None and scope["path"] not in OPEN_PATHS and not self.authorised(headers):
            return problem(401, "unauthorised", "Authorization", "send 'Authorization: Bearer <token>'")
        if scope["method"] not in BODY_METHODS:
            return None
        if b"content-length" in headers and b"transfer-encoding" in headers:
            return problem(
                400, "ambiguous framing", "Transfer-Encoding", "send Content-Length or Transfer-Encoding, not both"
            )
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return problem(413, "body too large", "body", f"the body is over {self.limit} bytes; send fewer records")
        media = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1").lower()
        if media not in JSON_TYPES:
            shown = media or "none"
            return problem(415, "unsupported media type", "Content-Type", f"send application/json (got {shown})")
        return None

    def authorised(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and self.token is not None and hmac.compare_digest(given.strip(), self.token)
