"""Replace secret header values before anything reaches the store or a log."""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Always redacted, whatever the user configures (compared case-insensitively).
DEFAULT_REDACTED: tuple[str, ...] = (
    "Authorization",
    "api-key",
    "OpenAI-Organization",
    "OpenAI-Project",
    "Cookie",
    "Set-Cookie",
    "Proxy-Authorization",
)
_DEFAULT_LOWER = frozenset(name.lower() for name in DEFAULT_REDACTED)


def redact_headers(headers: Iterable[tuple[str, str]], extra: Iterable[str] = ()) -> list[list[str]]:
    """Return headers as ``[name, value]`` pairs, secret values replaced by ``[REDACTED]``.

    Names compare case-insensitively; order and duplicate headers are kept, so the result still
    describes the exchange as it was (minus the secrets). `extra` adds more names to redact.
    """
    secret = _DEFAULT_LOWER.union(name.lower() for name in extra) if extra else _DEFAULT_LOWER
    return [[name, REDACTED if name.lower() in secret else value] for name, value in headers]


class RawRedactor:
    """Redacts mitmproxy's raw header fields (`((name, value), ...)` bytes pairs) on the event loop.

    Used before an exchange is journaled, so the journal never holds a secret. Cheap: header
    names repeat from request to request, so whether a name is secret is looked up in a dict
    (bounded) instead of lower-casing every name every time; a tuple without secrets is
    returned as it is.
    """

    __slots__ = ("_known", "_secret")

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._secret = frozenset(name.lower().encode() for name in (*DEFAULT_REDACTED, *extra))
        self._known: dict[bytes, bool] = {}

    def __call__(self, fields: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[bytes, bytes], ...]:
        """`fields` with secret values replaced by ``[REDACTED]`` (order and duplicates kept)."""
        known = self._known
        out = None
        for i, field in enumerate(fields):
            secret = known.get(field[0])
            if secret is None:
                secret = self._learn(field[0])
            if secret:
                if out is None:
                    out = list(fields)
                out[i] = (field[0], _REDACTED_BYTES)
        return fields if out is None else tuple(out)

    def _learn(self, name: bytes) -> bool:
        if len(self._known) > 4096:  # names chosen by clients: keep the cache bounded
            self._known.clear()
        secret = self._known[name] = name.lower() in self._secret
        return secret


_REDACTED_BYTES = REDACTED.encode()
