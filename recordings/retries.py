"""The one rule for failed attempts a client retried: which recorded failures the app never saw.

The openai SDK retries 408, 409, 429 and every 5xx (twice by default, POSTs included) before it
returns to the caller: it sleeps its backoff (0.5 s doubling up to 8 s, or the server's
`retry-after`) and sends the same request again, marked `x-stainless-retry-count: N`. The caller
is blocked meanwhile, so the retry is the next request *of that caller*. Anything recorded in
between comes from other, concurrent callers: other threads, or on the same thread mostly reads
(a poller, a dashboard), since the API itself refuses most writes to a thread with an active run.

So a failed attempt (one of those statuses) counts as retried, and is left out, when the same
request (method, URL and body) comes again in its scope before any other write there, and does
not say it is a fresh call (`x-stainless-retry-count: 0`); reads in between do not matter. The
scope is the thread the request addresses; requests that create a thread (createThread,
createThreadAndRun) address none yet and share one scope.

Two simpler rules fail a user. "Only when the very next exchange repeats it" keeps a retried
attempt whenever a concurrent poll lands in the backoff window, so replay sends the request
twice and serve answers a failure the app never saw. "When the same request appears anywhere
later" drops failures the app did see: a createRun refused with 409 (the SDK gave up) and made
again after the active run ended is the same request; dropping the 409 makes serve answer
success where the app failed, and replay leave out a step the app took. Here a different
write, or the SDK's own `retry-count: 0`, marks the later request as a new call and the failure
stays. When in doubt the rule keeps a failure: threads created concurrently by other callers can
hide a create's retry, and then its failed attempt stays (an SDK client retries through it when
served; replay never sends exchanges that belong to no thread).
"""

from __future__ import annotations

from collections.abc import Sequence

from runtap.recordings.exchanges import RecordedExchange

# The requests that create a thread: they address no thread yet.
CREATES = frozenset({"createThread", "createThreadAndRun"})


def is_retried_status(status: int | None) -> bool:
    """A status the openai SDK retries: 408, 409, 429 and every 5xx."""
    return status is not None and (status >= 500 or status in (408, 409, 429))


def scope(exchange: RecordedExchange) -> str | None:
    """The thread a request addresses: None for requests that create one."""
    return None if exchange.operation in CREATES else exchange.thread_id


def without_retried_attempts(exchanges: Sequence[RecordedExchange]) -> list[RecordedExchange]:
    """The exchanges in order, minus failed attempts the client retried (see the module docstring)."""
    retried: set[int] = set()
    # Walking backwards, per scope: the nearest later write, and the nearest later copy of each request.
    next_write: dict[str | None, int] = {}
    next_same: dict[tuple, int] = {}
    for index in range(len(exchanges) - 1, -1, -1):
        ex = exchanges[index]
        where = scope(ex)
        if is_retried_status(ex.status_code):
            same = next_same.get((where, ex.request))
            write = next_write.get(where)
            if same is not None and (write is None or same <= write) and _is_retry(exchanges[same]):
                retried.add(index)
        next_same[(where, ex.request)] = index
        if ex.is_write:
            next_write[where] = index
    return [ex for index, ex in enumerate(exchanges) if index not in retried]


def _is_retry(exchange: RecordedExchange) -> bool:
    """False when the SDK marked the request as a first attempt: a new call, not a retry."""
    return exchange.request_header("x-stainless-retry-count") != "0"
