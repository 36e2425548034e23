"""The HTTP JSON API on Starlette (run by uvicorn): routes, the one error shape, and the
guards every request passes (token, Host, body size and read deadline).

Every failure is ``{"error": "<one line>"}`` with a 4xx status; a bug is a 500 with the same
shape and no traceback. Blocking work (embedding, faiss, SQLite) runs in worker threads, at
most ``service.workers`` at a time, so the event loop keeps accepting and timing out clients.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import IndexLockedError, SemsearchError, ServiceUnavailable, UsageError
from . import params as P
from .openapi import docs_html, openapi_spec
from .reading import NotFound
from .service import DeadlineExceeded, IndexGone, SearchService, WritesDisabled

log = logging.getLogger("semsearch.serve")

#: Largest request body accepted (an upsert of many documents fits; a stray upload does not).
MAX_BODY = 8 * 1024 * 1024
#: Seconds a client may take to send its body before it gets 408.
BODY_TIMEOUT = 10.0
#: Seconds a request may take, waiting for a worker included, before it gets 503.
REQUEST_DEADLINE = 30.0
_HOST_OK = "semsearch.host_ok"


class JSONError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _dumps(content)


def error(status: int, message: str) -> Response:
    return _JSON({"error": message}, status_code=status)


def _status(exc: SemsearchError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, WritesDisabled):
        return 403
    if isinstance(exc, IndexGone):
        return 410
    if isinstance(exc, IndexLockedError):
        return 409
    if isinstance(exc, DeadlineExceeded | ServiceUnavailable):
        return 503
    if isinstance(exc, UsageError):
        return 400
    return 422


def create_app(
    service: SearchService,
    *,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    deadline: float = REQUEST_DEADLINE,
) -> ASGIApp:
    """The ASGI app for ``service``. ``token``: every request must carry it (``Authorization:
    Bearer``, or ``?token=`` for opening the page). ``allowed_hosts``: the only Host header
    names answered (Starlette's patterns), so a web page cannot reach a loopback server
    through DNS rebinding. ``deadline``: seconds a request may take, queueing included."""
    limiter = anyio.CapacityLimiter(service.workers)

    async def run(fn: Callable[..., Any], *args: Any, **kw: Any) -> Response:
        """``fn`` in a worker thread once one is free: waiting longer than the deadline is a
        503, so a queue of slow requests cannot hold a client for ever."""
        try:
            with anyio.fail_after(deadline):
                await limiter.acquire()
        except TimeoutError:
            return error(
                503, f"the server is busy: no worker was free within {deadline:g} s; retry later"
            )
        try:
            result = await anyio.to_thread.run_sync(functools.partial(fn, *args, **kw))
        except SemsearchError as exc:
            return error(_status(exc), str(exc))
        finally:
            limiter.release()
        return _JSON(result)

    async def search(request: Request) -> Response:
        until = time.monotonic() + deadline
        if request.method == "GET":
            raw = P.from_query(request.query_params.multi_items(), P.SEARCH_FIELDS)
        else:
            raw = await _json_body(request)
        return await run(service.search, P.search_request(raw), deadline=until)

    async def read(request: Request) -> Response:
        if request.method == "GET":
            raw = P.from_query(request.query_params.multi_items(), P.READ_FIELDS)
        else:
            raw = await _json_body(request)
        return await run(service.read, P.read_request(raw))

    async def info(request: Request) -> Response:
        _no_params(request)
        return await run(service.info)

    async def health(request: Request) -> Response:
        """Answered on the event loop (a stat, no reader), so busy workers never delay it."""
        _no_params(request)
        try:
            return _JSON(service.health())
        except SemsearchError as exc:
            return error(_status(exc), str(exc))

    async def upsert(request: Request) -> Response:
        _writes(service)
        return await run(service.upsert, P.upsert_items(await _json_body(request)))

    async def delete(request: Request) -> Response:
        _writes(service)
        return await run(service.delete, P.delete_ids(await _json_body(request)))

    async def refresh(request: Request) -> Response:
        _writes(service)
        body = await _json_body(request, optional=True)
        if body:
            raise UsageError(f"unknown field {next(iter(body))!r}; refresh takes none")
        return await run(service.refresh)

    async def page(request: Request) -> Response:
        html = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    async def spec(request: Request) -> Response:
        return _JSON(openapi_spec(service.allow_writes))

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_html(openapi_spec(service.allow_writes)), headers=_PAGE_HEADERS)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/search", search, methods=["GET", "POST"]),
        Route("/read", read, methods=["GET", "POST"]),
        Route("/info", info, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/upsert", upsert, methods=["POST"]),
        Route("/delete", delete, methods=["POST"]),
        Route("/refresh", refresh, methods=["POST"]),
        Route("/openapi.json", spec, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            JSONError: lambda _r, e: error(e.status, str(e)),
            UsageError: lambda _r, e: error(_status(e), str(e)),
            HTTPException: lambda _r, e: error(e.status_code, _http_message(e)),
            Exception: _internal,
        },
    )
    return _Guard(app, token=token, allowed_hosts=allowed_hosts)


_PAGE_HEADERS = {
    # The page is one file: no script, style or request may come from anywhere else.
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _http_message(exc: HTTPException) -> str:
    if exc.status_code == 404:
        return "no such endpoint: see /docs"
    if exc.status_code == 405:
        return "method not allowed for this endpoint: see /docs"
    return str(exc.detail)


def _internal(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}); the server log has details")


def _no_params(request: Request) -> None:
    extra = [k for k in request.query_params if k != "token"]
    if extra:
        raise UsageError(f"unknown parameter {extra[0]!r}: this endpoint takes none")


def _writes(service: SearchService) -> None:
    if not service.allow_writes:
        raise JSONError(403, "writes are disabled: start the server with --allow-writes")


async def _json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object: size-limited before and while reading, read within a
    deadline, and only as ``application/json`` (which a cross-site form cannot send)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise JSONError(400, "Content-Length is not a number")
        if int(length) > MAX_BODY:
            raise JSONError(413, f"request body is {length} bytes; the limit is {MAX_BODY}")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data = bytearray()
    try:
        with anyio.fail_after(BODY_TIMEOUT):
            async for part in request.stream():
                data += part
                if len(data) > MAX_BODY:
                    raise JSONError(413, f"request body is over the {MAX_BODY}-byte limit")
    except TimeoutError:
        raise JSONError(408, f"request body not received within {BODY_TIMEOUT:g} s") from None
    if not data and optional:
        return {}
    if ctype != "application/json":
        raise JSONError(415, "send the body as Content-Type: application/json")
    value = P.parse_json(bytes(data), "the body")
    if not isinstance(value, dict):
        raise JSONError(400, "the body must be a JSON object")
    return value


class _Guard:
    """Pure ASGI checks before routing: the Host header (Starlette's TrustedHostMiddleware,
    its refusal sent as our one-line JSON 421) and then the token."""

    def __init__(
        self, app: ASGIApp, *, token: str | None, allowed_hosts: Sequence[str] | None
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.hosts = (
            TrustedHostMiddleware(
                self._checked, allowed_hosts=list(allowed_hosts), www_redirect=False
            )
            if allowed_hosts
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.hosts is None:
            await self._checked(scope, receive, send)
            return

        async def send_or_refuse(message: Message) -> None:
            if scope.get(_HOST_OK):
                await send(message)
            elif message["type"] == "http.response.start":
                host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
                await _send_error(send, 421, f"Host {host[:80]!r} is not a loopback name")

        await self.hosts(scope, receive, send_or_refuse)

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_HOST_OK] = True
        token = self.token if scope["type"] == "http" else None
        if token is not None and not _authorized(scope, dict(scope["headers"]), token):
            await _send_error(send, 401, "missing or wrong token (Authorization: Bearer TOKEN)")
            return
        await self.app(scope, receive, send)


def _authorized(scope: Scope, headers: dict[bytes, bytes], token: bytes) -> bool:
    auth = headers.get(b"authorization", b"")
    if auth.startswith(b"Bearer ") and hmac.compare_digest(auth[7:].strip(), token):
        return True
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    given = query.get("token", [""])[-1].encode()
    return bool(given) and hmac.compare_digest(given, token)


async def _send_error(send: Send, status: int, message: str) -> None:
    body = _dumps({"error": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
