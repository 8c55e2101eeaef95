"""Send one logical step to the target with httpx and observe the answer.

The recorded path is kept (ids rewritten) and the target supplies scheme, host and port.
Recorded credentials were redacted and are never resent: credentials come from the options.
A wait step polls until the run reaches the recorded outcome or settles, honouring
`openai-poll-after-ms`; a streamed step is read as a stream and its events accumulated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx

from runtap.addon.redact import DEFAULT_REDACTED, REDACTED
from runtap.errors import RuntapError
from runtap.recordings.exchanges import CONNECTION_HEADERS
from runtap.recordings.ids import IdMap
from runtap.replay.matchers import FAILURE, Difference
from runtap.replay.observe import Outcome, merge_polls, observe
from runtap.replay.sessions import Step
from runtap.store.reader import first_line

# Never resent: secrets (redacted in the store anyway), per-connection headers, and what httpx
# computes itself.
_DROPPED_HEADERS = {name.lower() for name in DEFAULT_REDACTED} | CONNECTION_HEADERS | {"host", "accept-encoding"}
# A run in one of these states will not change without the client: stop polling.
SETTLED = {"requires_action", "completed", "failed", "cancelled", "expired", "incomplete"}
DEFAULT_POLL_MS = 500


@dataclass
class Sent:
    """What replaying one step produced."""

    observation: Outcome | None  # None when the step could not be sent
    duration_ms: float | None = None
    target: str | None = None  # the rewritten path that was sent
    notes: list[Difference] = field(default_factory=list)  # problems found while sending


def make_client(target: str, timeout: float) -> httpx.Client:
    """An httpx client for the target (thread-safe: sessions share it)."""
    return httpx.Client(base_url=target, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))


def check_reachable(client: httpx.Client) -> None:
    """Fail fast with a one-line error when nothing answers at the target."""
    try:
        client.get("/", timeout=5.0)
    except httpx.TransportError as exc:
        raise RuntapError(f"target {client.base_url} is not reachable: {first_line(exc)}") from None


def request_headers(recorded: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Recorded headers minus secrets, hop-by-hop and redacted values, plus the given ones."""
    override = {name.lower() for name, _ in extra}
    kept = [
        (n, v) for n, v in recorded if n.lower() not in _DROPPED_HEADERS and n.lower() not in override and v != REDACTED
    ]
    return kept + list(extra)


def send_step(
    client: httpx.Client, step: Step, ids: IdMap, headers: tuple[tuple[str, str], ...], timeout: float
) -> Sent:
    """Replay one logical step; ids in its path and body are rewritten first."""
    first = step.first
    target = ids.rewrite(first.target)
    body = ids.rewrite(first.request_body)
    missing = ids.missing(first.target + (first.request_body or ""))
    if missing:
        why = f"not sent: needs {', '.join(missing)}, which the replay never got a new id for (an earlier step failed)"
        return Sent(None, target=target, notes=[Difference("$.request", None, None, FAILURE, why)])
    hdrs = request_headers(first.request_headers, headers)
    started = time.monotonic()
    try:
        if step.kind == "wait":
            obs, notes = _wait(client, step, target, hdrs, timeout)
        else:
            obs, notes = _send(client, first.method, target, body, hdrs)[0], []
    except httpx.ConnectError as exc:
        raise RuntapError(f"target {client.base_url} stopped answering: {first_line(exc)}") from None
    return Sent(obs, (time.monotonic() - started) * 1000, target, notes)


@dataclass
class Answer:
    """One HTTP answer as text: what `exchange` read, before anything is made of it."""

    status_code: int | None  # None: no answer at all
    text: str = ""
    streamed: bool = False  # an SSE stream (read to its end, or to where it broke off)
    error: str | None = None  # transport trouble: no answer, or a stream cut short
    poll_after_ms: int | None = None  # the `openai-poll-after-ms` the target asked for


def exchange(client: httpx.Client, method: str, target: str, body: str | None, hdrs) -> Answer:
    """Send one request and read the whole answer; a stream is read to its end (or its break)."""
    request = client.build_request(method, target, content=body.encode() if body else None, headers=hdrs)
    try:
        response = client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        return Answer(None, error=f"no answer: {first_line(exc)}")
    chunks: list[str] = []
    error = None
    try:
        for text in response.iter_text():
            chunks.append(text)
    except httpx.TransportError as exc:  # e.g. a stream cut short: keep what arrived
        error = f"response broken off: {first_line(exc)}"
    finally:
        response.close()
    streamed = response.headers.get("content-type", "").startswith("text/event-stream")
    return Answer(response.status_code, "".join(chunks), streamed, error, _poll_after(response))


def _send(client: httpx.Client, method: str, target: str, body: str | None, hdrs) -> tuple[Outcome, int | None]:
    """One request observed, and the poll delay the target asked for."""
    answer = exchange(client, method, target, body, hdrs)
    if answer.status_code is None:
        return Outcome(status_code=None, error=answer.error), None
    obs = observe(answer.status_code, answer.text, streamed=answer.streamed)
    obs.error = obs.error or answer.error
    return obs, answer.poll_after_ms


def _wait(client: httpx.Client, step: Step, target: str, hdrs, timeout: float):
    """Poll the run until the recorded outcome or a settled state; compare outcomes, not polls."""
    wanted = _recorded_outcome(step)
    deadline = time.monotonic() + timeout
    polls: list[Outcome] = []
    while True:
        obs, poll_after_ms = _send(client, "GET", target, None, hdrs)
        polls.append(obs)
        status = obs.run_statuses[-1][1] if obs.run_statuses else None
        if obs.status_code != 200 or status is None or status == wanted or status in SETTLED:
            return merge_polls(polls), []
        pause = (poll_after_ms or DEFAULT_POLL_MS) / 1000
        if time.monotonic() + pause > deadline:
            note = Difference(
                "$.runs[0].status",
                wanted,
                status,
                FAILURE,
                f"timed out after {timeout:g}s waiting for the run to reach {wanted}; it is still {status}",
            )
            return merge_polls(polls), [note]
        time.sleep(pause)


def _recorded_outcome(step: Step) -> str | None:
    try:
        return json.loads(step.last.response_body or "").get("status")
    except (ValueError, AttributeError):
        return None


def _poll_after(response: httpx.Response) -> int | None:
    value = response.headers.get("openai-poll-after-ms")
    return int(value) if value and value.isdigit() else None
