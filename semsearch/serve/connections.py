"""The connection-level guard against slow clients (slowloris), as a uvicorn HTTP protocol.

uvicorn's h11 protocol has no header timeout: its keep-alive timer stops at the first byte, so a
client that sends one header byte every few seconds holds its connection for ever, and a few
hundred of them fill ``limit_concurrency``, after which everyone (token holders included) gets
503. Here a connection that has not sent a complete request head is *waiting*, and

- it must send the head within ``header_timeout`` seconds (of connecting, or of the previous
  response on a kept-alive connection), or it is closed;
- at most ``max_waiting`` connections wait at once: one more closes the one waiting longest.

A real client sends its head in one packet, so it never waits long and is never the oldest;
waiting connections cannot take the slots of requests being answered, because uvicorn's
``limit_concurrency`` is set above ``max_waiting`` (see :func:`.run.make_server`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("semsearch.serve")

#: Seconds a client has to send a request's line and headers.
HEADER_TIMEOUT = 10.0
#: Connections that may wait for their request head at once.
MAX_WAITING = 128


class _Waiting:
    """The waiting connections of one server, oldest first, and whether eviction was logged."""

    def __init__(self) -> None:
        self.conns: OrderedDict[GuardedH11, None] = OrderedDict()
        self.warned = False


class GuardedH11(H11Protocol):
    """H11Protocol with a header deadline and a cap on connections waiting for a request."""

    header_timeout = HEADER_TIMEOUT
    max_waiting = MAX_WAITING

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        state = self.server_state
        waiting = getattr(state, "semsearch_waiting", None)
        if waiting is None:
            waiting = _Waiting()
            state.semsearch_waiting = waiting  # type: ignore[attr-defined]
        self._waiting: _Waiting = waiting
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.scope
        super().handle_events()
        if self.scope is not before:  # a request head arrived
            self._stop_waiting()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._start_waiting()  # the next request on this connection gets the same deadline
        super().on_response_complete()

    def _start_waiting(self) -> None:
        self._stop_waiting()
        conns = self._waiting.conns
        while len(conns) >= self.max_waiting:
            oldest, _ = conns.popitem(last=False)
            if not self._waiting.warned:
                self._waiting.warned = True
                log.warning(
                    "more than %d connections are waiting to send a request; closing the"
                    " oldest (a slow or hostile client?)",
                    self.max_waiting,
                )
            oldest._close_waiting()
        conns[self] = None
        self._head_timer = self.loop.call_later(self.header_timeout, self._close_waiting)

    def _stop_waiting(self) -> None:
        self._waiting.conns.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close_waiting(self) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.close()
