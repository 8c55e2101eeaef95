"""Incremental HTTP content decoding (gzip, deflate, br, zstd, identity and stacks of them).

A streamed body arrives in arbitrary chunks, still content-encoded; a decoder turns each chunk
into whatever plain bytes it completes. Decoders never raise: a corrupt or truncated body sets
`.error`, and from then on input is ignored, so capture can record the problem and carry on.
"""

from __future__ import annotations

import sys
import zlib
from typing import Protocol

import brotli

# zstd: the standard library's `compression.zstd` from Python 3.14, its backport before (as
# mitmproxy itself does since 12.3).
if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd


class _Stage(Protocol):
    """One decoding step; both methods may raise on a corrupt or truncated body."""

    name: str

    def _process(self, data: bytes) -> bytes: ...

    def _finish(self) -> bytes: ...


class _Frames:
    """gzip, zlib or zstd: a decompressor per member/frame, restarted on what follows an end.

    A gzip body may hold several members and a zstd body several frames, back to back.
    """

    def __init__(self, new, name: str) -> None:
        self.name = name
        self._new = new
        self._obj = new()

    def _process(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._obj.eof:  # the previous member ended: what follows starts the next one
                self._obj = self._new()
            out.append(self._obj.decompress(data))
            data = self._obj.unused_data if self._obj.eof else b""
        return b"".join(out)

    def _finish(self) -> bytes:
        flush = getattr(self._obj, "flush", None)  # zlib has one; zstd returns all it can at once
        tail = flush() if flush else b""
        if not self._obj.eof:
            raise ValueError("truncated stream")
        return tail


def _gzip() -> _Frames:
    return _Frames(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), "gzip")


def _zstd() -> _Frames:
    return _Frames(zstd.ZstdDecompressor, "zstd")


class _Deflate:
    """HTTP "deflate": zlib-wrapped per the RFC, but raw deflate in the wild; the header decides."""

    name = "deflate"

    def __init__(self) -> None:
        self._head = b""
        self._inner: _Frames | None = None

    def _process(self, data: bytes) -> bytes:
        if self._inner is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            cmf, flg = self._head[0], self._head[1]
            is_zlib = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            wbits = zlib.MAX_WBITS if is_zlib else -zlib.MAX_WBITS
            self._inner = _Frames(lambda: zlib.decompressobj(wbits), "deflate")
            data, self._head = self._head, b""
        return self._inner._process(data)

    def _finish(self) -> bytes:
        if self._inner is None:
            if not self._head:
                return b""
            raise ValueError("truncated stream")
        return self._inner._finish()


class _Brotli:
    name = "br"

    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def _process(self, data: bytes) -> bytes:
        return self._obj.process(data)

    def _finish(self) -> bytes:
        if not self._obj.is_finished():
            raise ValueError("truncated stream")
        return b""


_STAGES = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _Deflate,
    "br": _Brotli,
    "zstd": _zstd,
}


class Decoder:
    """Decode one body incrementally: `feed` chunks in order, then `flush` once.

    `error` is None, or a one-line reason once the body proved corrupt or truncated; after that
    `feed` and `flush` return b"". An unsupported encoding sets `error` from the start and
    passes the bytes through unchanged, so the body is kept as it was sent.
    """

    def __init__(self, content_encoding: str | None) -> None:
        self.error: str | None = None
        self._fed = False
        self._passthrough = False
        self._stages: list[_Stage] = []
        # Encodings are listed in the order applied, so they are undone from the last one.
        for name in reversed((content_encoding or "").split(",")):
            name = name.strip().lower()
            if not name or name == "identity":
                continue
            factory = _STAGES.get(name)
            if factory is None:
                self.error = f"unsupported content-encoding {name!r}"
                self._stages, self._passthrough = [], True
                return
            self._stages.append(factory())

    def feed(self, data: bytes) -> bytes:
        """Decode the next chunk; return the plain bytes it completes (possibly b"")."""
        if self._passthrough:
            return bytes(data)
        if self.error is not None:
            return b""
        self._fed = self._fed or bool(data)
        stage = None
        try:
            for stage in self._stages:
                if not data:
                    break
                data = stage._process(data)
        except Exception as exc:  # zlib.error, brotli.error, ZstdError: all mean a corrupt body
            self.error = _reason(stage, exc)
            return b""
        return bytes(data)

    def flush(self) -> bytes:
        """End the body: return what remains and set `error` if the body stopped short."""
        # An empty body (204, HEAD) is complete whatever its Content-Encoding says.
        if self.error is not None or not self._fed:
            return b""
        out = b""
        stage = None
        try:
            for stage in self._stages:
                out = stage._process(out) if out else b""
                out += stage._finish()
        except Exception as exc:
            self.error = _reason(stage, exc)
            return b""
        return out


def _reason(stage: _Stage | None, exc: Exception) -> str:
    detail = (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"{stage.name if stage else 'decoding'}: {detail}"


def make_decoder(content_encoding: str | None) -> Decoder:
    """Return a `Decoder` for a `Content-Encoding` header value (None or "" means identity)."""
    return Decoder(content_encoding)


def decode_body(raw: bytes, content_encoding: str | None) -> tuple[bytes, str | None]:
    """Decode a whole body; return (plain bytes, None), or (raw, reason) when it cannot be decoded.

    On failure the raw bytes are returned unchanged: the body as sent is the best record left.
    """
    if not content_encoding:
        return raw, None
    decoder = Decoder(content_encoding)
    out = decoder.feed(raw)
    out += decoder.flush()
    if decoder.error is not None:
        return raw, decoder.error
    return out, None
