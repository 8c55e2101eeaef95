"""Fresh object ids in the hosted API's shape (`run_` + 24 alphanumerics).

Ids are random on purpose: two simulator instances never share ids, so anything that compares
runs across instances must match them by content, as replay does against a real server.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh id such as `run_UPbDYMTdsNUU5FJ8XTAUjHZP` for `prefix="run"`."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_request_id() -> str:
    """A fresh `x-request-id` value (`req_` + 32 hex digits, as the hosted API sends)."""
    return "req_" + secrets.token_hex(16)
