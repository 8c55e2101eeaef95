"""An incremental Server-Sent Events parser following the WHATWG event-stream rules.

Chunks may split anywhere: inside a UTF-8 character, between ``\\r`` and ``\\n``, inside a
field name. Each event keeps the arrival time of the chunk that completed it. Unlike a browser,
`SSEParser.close` also returns a last event that lacks its closing blank line (a cut stream
still says what it carried) and records whether the stream ended properly.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event: its 0-based position in the stream, name, data and arrival time."""

    seq: int
    event: str
    data: str
    received_at: float | None
    id: str = ""  # the stream's last event id when this event was dispatched


class SSEParser:
    """Feed chunks (bytes or str) as they arrive; get back the events each chunk completes.

    `done` turns True once a ``done`` event or ``[DONE]`` data went by; `closed` after `close`.
    Feed one kind per stream: bytes are decoded as UTF-8 (invalid sequences replaced).
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []  # text of an unfinished line
        self._after_cr = False  # the last chunk ended in "\r": a leading "\n" is its pair
        self._started = False  # the BOM, if any, has been stripped
        self._event = ""
        self._data: list[str] = []
        self._last_id = ""
        self._seq = 0
        self._last_time: float | None = None
        self.done = False
        self.closed = False

    @property
    def truncated(self) -> bool:
        """True once closed without having seen a ``done`` event or ``[DONE]`` data."""
        return self.closed and not self.done

    def feed(self, chunk: bytes | str, received_at: float | None = None) -> list[SSEEvent]:
        """Parse the next chunk, which arrived at `received_at`; return the events it completes."""
        if received_at is not None:
            self._last_time = received_at
        text = self._utf8.decode(chunk) if isinstance(chunk, bytes | bytearray) else chunk
        return self._text(text)

    def close(self, received_at: float | None = None) -> list[SSEEvent]:
        """End the stream: return any event still open, and settle `truncated`."""
        if received_at is not None:
            self._last_time = received_at
        events = self._text(self._utf8.decode(b"", final=True))
        if self._pending:
            line = "".join(self._pending)
            self._pending.clear()
            self._line(line, events)
        self._dispatch(events)
        self.closed = True
        return events

    def _text(self, text: str) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not text:
            return events
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = False
        if "\n" not in text and "\r" not in text:
            # Most chunks of a long data line: no need to look at the pending text again.
            if text:
                self._pending.append(text)
            return events
        self._pending.append(text)
        joined = "".join(self._pending)
        # str.split is several times faster than the regex, and streams rarely use CR.
        lines = _EOL.split(joined) if "\r" in joined else joined.split("\n")
        rest = lines.pop()
        self._pending = [rest] if rest else []
        self._after_cr = text.endswith("\r")
        for line in lines:
            self._line(line, events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields do not matter to a recorder.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if not self._data:
            self._event = ""
            return
        data = "\n".join(self._data)
        event = self._event or "message"
        self._data = []
        self._event = ""
        if event == "done" or data == "[DONE]":
            self.done = True
        events.append(SSEEvent(self._seq, event, data, self._last_time, self._last_id))
        self._seq += 1


def parse_sse_text(text: str | bytes, received_at: float | None = None) -> list[SSEEvent]:
    """Parse a whole event stream at once; every event gets `received_at`."""
    parser = SSEParser()
    return parser.feed(text, received_at) + parser.close()
