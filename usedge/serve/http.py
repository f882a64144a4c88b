"""The HTTP/1.1 protocol ``usedge serve`` runs under uvicorn: uvicorn's h11 protocol with a deadline for each
request head. uvicorn has none: a client sending its headers at 1 byte/s (slowloris) kept its connection open
for as long as it liked, and the keep-alive timer is reset by every byte. Here a connection that has not
delivered a whole request head (request line and headers) within ``head_timeout_s`` of connecting, or of its
previous response, is closed; once a head is in (a request body, a WebSocket) the deadline no longer applies."""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("usedge.serve")


def head_timeout_protocol(head_timeout_s: float) -> type:
    """A subclass of uvicorn's ``H11Protocol`` (pass it as ``uvicorn.Config(http=...)``) enforcing the deadline."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutH11Protocol(H11Protocol):
        timeout_s = head_timeout_s

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer: asyncio.TimerHandle | None = None
            self._arm()

        def _arm(self) -> None:
            if self._head_timer is None and self.timeout_s > 0:
                self._head_timer = self.loop.call_later(self.timeout_s, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # h11 leaves IDLE once the whole head is parsed; a new request on a kept-alive connection is IDLE again
            if self.conn.their_state is h11.IDLE:
                self._arm()
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():     # the next request head, on a kept-alive connection
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.info("closed a connection from %s: no complete request head within %.0f s",
                         "%s:%d" % self.client if self.client else "?", self.timeout_s)
                self.transport.close()

    return HeadTimeoutH11Protocol
