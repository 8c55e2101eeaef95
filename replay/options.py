"""What a replay is asked to do: validated options, parsed from the command line or built in code.

Everything here is pure validation: bad values raise `RuntapError` with a one-line message, so
the CLI exits 2 before any request is sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from runtap.errors import RuntapError
from runtap.recordings.pacing import check_speed
from runtap.store.multi import expand_sources

APIS = ("runs", "responses")


@dataclass(frozen=True)
class ReplayOptions:
    """One replay: where to send, which sessions, how fast, and how strictly to compare."""

    target: str  # scheme://host[:port]; the recorded path is kept
    dbs: tuple[str, ...] = ("runtap.duckdb",)  # store files, globs, export directories: read as one
    threads: tuple[str, ...] = ()
    capture: str | None = None
    since: datetime | None = None
    concurrency: int = 1
    speed: float = 0.0  # 0 = as fast as possible, 1 = recorded pacing, N = N times faster
    timeout: float = 60.0  # seconds per request and per wait-for-outcome step
    headers: tuple[tuple[str, str], ...] = ()  # sent on every request (credentials)
    id_map: dict[str, str] = field(default_factory=dict)  # ids the target already knows
    token_tolerance: float = 0.10
    max_slowdown: float | None = None  # off by default
    ignore: tuple[str, ...] = ()  # difference paths (glob) to ignore
    api: str = "runs"  # runs: as recorded; responses: translated to the Responses API (a migration)

    @classmethod
    def from_command_line(
        cls,
        *,
        target: str,
        capture: str | None,
        since: str | None,
        headers: tuple[str, ...],
        map_ids: tuple[str, ...],
        dbs: tuple[str, ...],
        threads: tuple[str, ...],
        ignore: tuple[str, ...],
        api: str = "runs",
        **numbers,
    ) -> ReplayOptions:
        """Validate and parse `runtap replay`'s options as given on the command line; RuntapError if bad."""
        from runtap.analysis.filters import parse_instant

        check_numbers(**numbers)
        if api not in APIS:
            raise RuntapError(f"--api must be one of {', '.join(APIS)}, got {api!r}")
        return cls(
            target=parse_target(target),
            dbs=tuple(dbs),
            threads=tuple(threads),
            capture=capture,
            since=parse_instant(since, option="--since") if since else None,
            headers=parse_headers(headers),
            id_map=parse_id_map(map_ids),
            ignore=tuple(ignore),
            api=api,
            **numbers,
        )

    @property
    def results_db(self) -> str | None:
        """Where replay results are stored: the first store file given (None for an export dir)."""
        first = expand_sources(self.dbs)[0]
        return None if os.path.isdir(first) else first


def parse_target(value: str) -> str:
    """Validate `--target`: scheme and host (and port) only, since the recorded path is kept."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuntapError(f"--target must look like http://HOST:PORT, got {value!r}")
    if parts.path not in ("", "/") or parts.query:
        raise RuntapError(
            f"--target {value!r} has a path; give only scheme://host:port (the recorded path, "
            "e.g. /v1/threads/..., is kept)"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise RuntapError(f"--target has a bad port: {value!r}") from None
    return f"{parts.scheme}://{parts.netloc}"


def parse_id_map(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Parse repeated `OLD=NEW` id mappings."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise RuntapError(f"--map-id expects OLD=NEW, got {pair!r}")
        mapping[old.strip()] = new.strip()
    return mapping


def parse_headers(
    values: tuple[str, ...] | list[str], env: dict[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """Parse repeated `Name: value` headers; add `Authorization` from OPENAI_API_KEY unless given."""
    env = os.environ if env is None else env
    headers: list[tuple[str, str]] = []
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise RuntapError(f"--header expects 'Name: value', got {value!r}")
        headers.append((name.strip(), content.strip()))
    names = {name.lower() for name, _ in headers}
    if "authorization" not in names and "api-key" not in names and env.get("OPENAI_API_KEY"):
        headers.append(("Authorization", f"Bearer {env['OPENAI_API_KEY']}"))
    return tuple(headers)


def check_numbers(
    *,
    concurrency: int,
    speed: float,
    timeout: float,
    token_tolerance: float,
    max_slowdown: float | None,
) -> None:
    """Reject numeric options that cannot mean anything."""
    if concurrency < 1:
        raise RuntapError(f"--concurrency must be at least 1, got {concurrency}")
    check_speed(speed)
    if timeout <= 0:
        raise RuntapError(f"--timeout must be positive, got {timeout}")
    if token_tolerance < 0:
        raise RuntapError(f"--token-tolerance must be 0 or more, got {token_tolerance}")
    if max_slowdown is not None and max_slowdown <= 0:
        raise RuntapError(f"--max-slowdown must be positive, got {max_slowdown}")
