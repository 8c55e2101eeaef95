"""Property tests: capture's pure functions never raise on arbitrary input and agree with
themselves however a body is split into chunks."""

import gzip
import json
import zlib
from datetime import datetime

import brotli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtap.addon.decode import decode_body, make_decoder, zstd
from runtap.addon.exchange import Exchange
from runtap.addon.normalize import TABLES, normalize
from runtap.addon.routes import match_route
from runtap.addon.sse import SSEParser, parse_sse_text
from runtap.store.schema import TABLES as SCHEMA

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPERATIONS = {
    "createThread",
    "createThreadAndRun",
    "createMessage",
    "listRuns",
    "createRun",
    "getRun",
    "modifyRun",
    "cancelRun",
    "submitToolOutputsToRun",
    "listRunSteps",
    "getRunStep",
}


def _split(data, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points + [len(data)]:
        pieces.append(data[last:point])
        last = point
    return pieces


# --- SSE -----------------------------------------------------------------------------------

# Text that can stand on one SSE line: no line breaks, no lone surrogates (not encodable as UTF-8).
line_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)


@FAST
@given(raw=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_sse_random_bytes_any_split_never_raise_and_match_one_shot(raw, cuts):
    parser = SSEParser()
    events = []
    for piece in _split(raw, cuts):
        events += parser.feed(piece, 1.0)
    events += parser.close()
    assert events == parse_sse_text(raw, 1.0)
    assert [e.seq for e in events] == list(range(len(events)))


@FAST
@given(
    garbage=st.binary(max_size=200),
    name=line_text.filter(lambda s: s and s[0] != " "),
    data=st.lists(line_text, min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 400), max_size=12),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_sse_a_well_formed_event_after_garbage_and_a_blank_line_is_never_lost(garbage, name, data, cuts, eol):
    event = eol.join([f"event: {name}"] + [f"data: {line}" for line in data]) + eol + eol
    raw = garbage + b"\n\n" + event.encode()
    parser = SSEParser()
    events = []
    for piece in _split(raw, cuts):
        events += parser.feed(piece, 2.0)
    events += parser.close()
    assert (events[-1].event, events[-1].data) == (name, "\n".join(data))


# --- routes --------------------------------------------------------------------------------


@FAST
@given(method=st.text(max_size=8), url=st.text(max_size=120))
def test_router_never_raises(method, url):
    route = match_route(method, url)
    assert route is None or (route.operation in OPERATIONS and "?" not in route.path)


segment = st.text(
    st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_-"), min_size=1, max_size=12
).filter(lambda s: s not in ("threads", "runs"))


@FAST
@given(
    prefix=st.lists(segment, max_size=3),
    thread=segment,
    run=segment,
    query=st.sampled_from(["", "?", "?api-version=2024-05-01-preview", "?include%5B%5D=x%5B%2A%5D"]),
    slash=st.booleans(),
)
def test_router_finds_ids_under_any_prefix(prefix, thread, run, query, slash):
    path = "/" + "/".join(prefix + ["threads", thread, "runs", run, "steps"]) + ("/" if slash else "")
    route = match_route("GET", "https://host" + path + query)
    assert (route.operation, route.thread_id, route.run_id) == ("listRunSteps", thread, run)


# --- normalize -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
RUN_KEYS = [
    "id",
    "object",
    "thread_id",
    "run_id",
    "status",
    "model",
    "created_at",
    "started_at",
    "expires_at",
    "expired_at",
    "completed_at",
    "usage",
    "last_error",
    "incomplete_details",
    "required_action",
    "step_details",
    "delta",
    "type",
    "error",
]
objects = st.dictionaries(st.sampled_from(RUN_KEYS), json_values, max_size=10) | json_values
OBJECT_TYPES = st.sampled_from(["thread.run", "thread.run.step", "thread.run.step.delta", "thread", None])
EVENTS = st.sampled_from(
    [
        "thread.run.created",
        "thread.run.step.delta",
        "thread.run.step.completed",
        "thread.created",
        "error",
        "done",
        "message",
        "thread.message.delta",
    ]
)
URLS = st.sampled_from(
    [
        "/v1/threads/t/runs",
        "/v1/threads/runs",
        "/v1/threads/t/runs/r",
        "/v1/threads/t/runs/r/steps",
        "/v1/threads/t/runs/r/steps/s",
        "/v1/threads/t/runs/r/submit_tool_outputs",
        "/v1/threads",
        "/v1/threads/t/messages",
        "/v1/threads/t/runs/r/cancel",
        "/v1/assistants",
    ]
)

PY_TYPES = {
    "VARCHAR": str,
    "JSON": str,
    "INTEGER": int,
    "BIGINT": int,
    "DOUBLE": float,
    "BOOLEAN": bool,
    "TIMESTAMPTZ": datetime,
}


def _check_rows(rows):
    assert set(rows) == set(TABLES) and len(rows["exchanges"]) == 1
    # the last-resort guard in normalize must never be what saved the day
    assert "normalization failed" not in (rows["exchanges"][0]["error"] or "")
    for table, table_rows in rows.items():
        columns = SCHEMA[table]
        for row in table_rows:
            assert list(row) == [name for name, _ in columns]
            for name, kind in columns:
                value = row[name]
                if value is None:
                    continue
                assert isinstance(value, PY_TYPES[kind]), (table, name, value)
                if kind == "JSON":
                    json.loads(value)
                elif kind in ("INTEGER", "BIGINT"):
                    assert -(2**63) <= value < 2**63
                elif kind == "TIMESTAMPTZ":
                    assert value.tzinfo is not None


def _with_object_type(obj, object_type):
    if isinstance(obj, dict) and object_type is not None:
        obj = dict(obj, object=object_type)
    return obj


@FAST
@given(
    url=URLS,
    method=st.sampled_from(["GET", "POST"]),
    status=st.sampled_from([200, 201, 404, 500]),
    obj=objects,
    object_type=OBJECT_TYPES,
    as_list=st.booleans(),
)
def test_normalize_never_raises_on_random_json(url, method, status, obj, object_type, as_list):
    obj = _with_object_type(obj, object_type)
    body = {"object": "list", "data": [obj, obj]} if as_list else obj
    ex = Exchange(
        "e",
        "c",
        method,
        url,
        response_headers=[("content-type", "application/json")],
        response_body=json.dumps(body).encode(),
        status_code=status,
        request_body=json.dumps(obj).encode(),
        request_started_at=1.0,
        response_ended_at=2.0,
    )
    _check_rows(normalize(ex))


@settings(FAST, max_examples=60)
@given(
    url=URLS,
    items=st.lists(st.tuples(EVENTS, objects, OBJECT_TYPES), max_size=6),
    tail=st.binary(max_size=40),
    live=st.booleans(),
)
def test_normalize_never_raises_on_random_streams(url, items, tail, live):
    body = (
        "".join(
            f"event: {name}\ndata: {json.dumps(_with_object_type(obj, kind))}\n\n" for name, obj, kind in items
        ).encode()
        + tail
    )
    events = parse_sse_text(body, 3.0) if live else None
    ex = Exchange(
        "e",
        "c",
        "POST",
        url,
        response_headers=[("Content-Type", "text/event-stream")],
        response_body=body,
        status_code=200,
        sse_events=events,
        streamed=True,
        request_started_at=1.0,
        response_started_at=None,
        response_ended_at=None,
    )
    _check_rows(normalize(ex))


@FAST
@given(
    url=st.text(max_size=40) | URLS,
    body=st.binary(max_size=200),
    status=st.none() | st.integers(0, 999),
    headers=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=4),
    times=st.lists(st.none() | st.floats(allow_nan=True) | st.integers(-(2**70), 2**70), min_size=4, max_size=4),
)
def test_normalize_never_raises_on_random_bytes_headers_and_times(url, body, status, headers, times):
    ex = Exchange(
        "e",
        None,
        "GET",
        url,
        request_headers=headers,
        response_headers=headers,
        response_body=body,
        request_body=body,
        status_code=status,
        request_started_at=times[0],
        response_started_at=times[1],
        first_byte_at=times[2],
        response_ended_at=times[3],
    )
    _check_rows(normalize(ex))


# --- decoding ------------------------------------------------------------------------------

ENCODE = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
    "identity": lambda data: data,
}


def _chunked(data, encoding, cuts):
    decoder = make_decoder(encoding)
    out = b"".join(decoder.feed(piece) for piece in _split(data, cuts)) + decoder.flush()
    return out, decoder.error


@FAST
@given(
    plain=st.binary(max_size=600),
    encoding=st.sampled_from(sorted(ENCODE)),
    cuts=st.lists(st.integers(0, 1000), max_size=20),
)
def test_decoding_any_split_equals_one_shot(plain, encoding, cuts):
    encoded = ENCODE[encoding](plain)
    assert _chunked(encoded, encoding, cuts) == (plain, None)
    assert decode_body(encoded, encoding) == (plain, None)


@FAST
@given(
    raw=st.binary(max_size=200),
    encoding=st.sampled_from(["gzip", "deflate", "br", "zstd", "br, gzip"]),
    cuts=st.lists(st.integers(0, 300), max_size=10),
)
def test_decoding_garbage_never_raises_and_fails_the_same_way_in_chunks(raw, encoding, cuts):
    whole, error = decode_body(raw, encoding)
    chunked, chunked_error = _chunked(raw, encoding, cuts)
    assert (error is None) == (chunked_error is None)
    if error is None:
        assert chunked == whole
