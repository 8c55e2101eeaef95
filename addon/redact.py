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
