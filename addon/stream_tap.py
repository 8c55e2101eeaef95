"""Observe a response body as mitmproxy streams it to the client, without delaying it."""

from __future__ import annotations

import time


class StreamTap:
    """A `flow.response.stream` callable: passes every chunk through unchanged, keeps a copy.

    mitmproxy calls it on its event loop for each body chunk (and once with b"" at the end), so
    it only stamps the arrival time and appends; decoding and parsing happen later, off the loop.
    """

    __slots__ = ("chunks",)

    def __init__(self) -> None:
        self.chunks: list[tuple[float, bytes]] = []

    def __call__(self, chunk: bytes) -> bytes:
        if chunk:
            self.chunks.append((time.time(), chunk))
        return chunk
