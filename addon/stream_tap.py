"""Observe a response body as mitmproxy streams it to the client, without delaying it."""

from __future__ import annotations

import time


class StreamTap:
    """A `flow.response.stream` callable: passes every chunk through unchanged, keeps a copy.

    mitmproxy calls it on its event loop for each body chunk, before sending the chunk on (and
    once with b"" at the end, before the response hook), so it only stamps the arrival time and
    appends; decoding and parsing happen later, in the recorder process.

    `remaining`: the body's Content-Length. A client that knows the length has the whole
    response once the last byte arrives, before mitmproxy's response hook runs; so when the
    last chunk passes, `on_complete(tap)` is called first (the recorder journals the exchange
    there), and only then does mitmproxy send that chunk.
    """

    __slots__ = ("chunks", "flow", "on_complete", "remaining")

    def __init__(self, flow=None, remaining: int | None = None, on_complete=None) -> None:
        self.chunks: list[tuple[float, bytes]] = []
        self.flow = flow  # set to None once the exchange is recorded
        self.remaining = remaining
        self.on_complete = on_complete

    def __call__(self, chunk: bytes) -> bytes:
        if chunk:
            self.chunks.append((time.time(), chunk))
            if self.remaining is not None:
                self.remaining -= len(chunk)
                if self.remaining <= 0:
                    self.remaining = None
                    self.on_complete(self)
        return chunk
