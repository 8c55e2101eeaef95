"""The recordings layer: loading from stores, the retried-attempt rule, threads, ids, JSON diff, pacing."""

from __future__ import annotations

import json

import pytest

from runtap.errors import RuntapError
from runtap.recordings.exchanges import load_exchanges, path_and_query
from runtap.recordings.ids import IdMap, fresh_like
from runtap.recordings.jsondiff import MISSING, json_diff
from runtap.recordings.pacing import check_speed, scaled
from runtap.recordings.retries import without_retried_attempts
from runtap.recordings.sessions import group_threads
from runtap.serve.recording import load_recording
from tests.recorded import recorded
from tests.store_fixtures import exchange, make_store, sse_event

BODY = '{"assistant_id": "asst_1"}'


def post(exchange_id, path, started, *, thread="thread_A", status=200, body=BODY, retry=None):
    headers = {"x-stainless-retry-count": str(retry)} if retry is not None else None
    return recorded(
        exchange_id, "POST", path, thread=thread, status=status, body=body, started=started, request_headers=headers
    )


def kept(exchanges) -> list[str]:
    return [ex.exchange_id for ex in without_retried_attempts(exchanges)]


# --- the retried-attempt rule -------------------------------------------------------------------


def test_every_failed_attempt_the_sdk_retried_is_left_out_and_its_last_failure_kept():
    runs = "/threads/thread_A/runs"
    exchanges = [post("a", runs, 0, status=503), post("b", runs, 1, status=503), post("c", runs, 2, status=503)]
    assert kept(exchanges) == ["c"]  # the SDK gave up after the third attempt: the app saw "c"
    assert kept([*exchanges, post("d", runs, 3)]) == ["d"]


def test_other_threads_and_reads_in_the_backoff_window_do_not_hide_a_retry():
    runs = "/threads/thread_A/runs"
    exchanges = [
        post("a", runs, 0, status=429),
        post("b", "/threads/thread_B/runs", 0.1, thread="thread_B"),  # another caller, another thread
        recorded("c", "GET", "/threads/thread_A/runs/run_1", thread="thread_A", started=0.2),  # a poller
        post("d", runs, 1),
    ]
    assert kept(exchanges) == ["b", "c", "d"]


def test_a_new_call_is_not_a_retry():
    runs = "/threads/thread_A/runs"
    other_write = [
        post("a", runs, 0, status=500),
        post("b", "/threads/thread_A/messages", 5, body="{}"),
        post("c", runs, 6),
    ]
    assert kept(other_write) == ["a", "b", "c"]
    # Only reads in between, but the SDK marked the later request as a first attempt.
    marked = [
        post("a", runs, 0, status=409, retry=2),
        recorded("b", "GET", "/threads/thread_A/runs/run_1", thread="thread_A", started=5),
        post("c", runs, 9, retry=0),
    ]
    assert kept(marked) == ["a", "b", "c"]
    different_body = [post("a", runs, 0, status=500), post("b", runs, 1, body='{"assistant_id": "asst_2"}')]
    assert kept(different_body) == ["a", "b"]
    not_retried = [post("a", runs, 0, status=400), post("b", runs, 1)]
    assert kept(not_retried) == ["a", "b"]


def test_a_failed_create_before_any_thread_is_left_out_when_retried():
    failed = post("a", "/threads/runs", 0, thread=None, status=500)
    retry = post("b", "/threads/runs", 1, thread="thread_new", retry=1)
    threads = group_threads([failed, retry])
    assert [(t.thread_id, [e.exchange_id for e in t.exchanges]) for t in threads] == [("thread_new", ["b"])]
    (alone,) = group_threads([failed])
    assert alone.thread_id is None and alone.exchanges == (failed,)


def test_threads_are_ordered_by_their_first_exchange():
    exchanges = [
        post("a", "/threads/thread_B/runs", 0, thread="thread_B"),
        post("b", "/threads/thread_A/runs", 1),
        post("c", "/threads/thread_B/runs", 2, thread="thread_B"),
    ]
    assert [(t.thread_id, len(t.exchanges)) for t in group_threads(exchanges)] == [("thread_B", 2), ("thread_A", 1)]


# --- loading --------------------------------------------------------------------------------------


def test_two_stores_load_as_one_with_stream_event_times(tmp_path):
    first = exchange(
        "createRun",
        started=0,
        method="POST",
        streamed=True,
        exchange_id="s1",
        url="http://h/v1/threads/thread_1/runs?api-version=1",
        request_headers=[["OpenAI-Beta", "v2"]],
    )
    second = exchange("getRun", started=5, exchange_id="s2", capture_id="cap_2")
    make_store(
        tmp_path / "a.duckdb",
        {"exchanges": [first], "sse_events": [sse_event("s1", 0, "e", 0.25), sse_event("s1", 1, "e", 0.75)]},
    )
    make_store(tmp_path / "b.duckdb", {"exchanges": [second]})
    sources = [str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb")]
    loaded = load_exchanges(sources, events=True)
    assert [e.exchange_id for e in loaded] == ["s1", "s2"]
    assert loaded[0].target == "/v1/threads/thread_1/runs?api-version=1"
    assert loaded[0].request_headers == (("OpenAI-Beta", "v2"),)
    assert loaded[0].event_gaps == pytest.approx((0.25, 0.5))
    assert load_exchanges(sources)[0].event_times == ()  # only when asked for
    assert [e.exchange_id for e in load_exchanges(sources, capture="cap_2")] == ["s2"]
    # serve takes the same forms as replay: several stores, or a glob.
    assert load_recording(sources).exchange_count == 2
    assert load_recording(str(tmp_path / "*.duckdb")).exchange_count == 2
    with pytest.raises(RuntapError, match="no runtap store at"):
        load_exchanges([str(tmp_path / "none.duckdb")])


def test_path_and_query():
    assert path_and_query("https://h/openai/threads/t/runs?api-version=2024-05-01&include[]=x") == (
        "/openai/threads/t/runs?api-version=2024-05-01&include[]=x"
    )
    assert path_and_query("http://h/v1/threads") == "/v1/threads"


# --- the id mapper ------------------------------------------------------------------------------


def test_ids_of_any_shape_are_rewritten_whole_in_any_text():
    ids = IdMap({"file-abc": "file-xyz"})
    ids.learn({"id": "0f8e-11", "run_id": "run_1"}, {"id": "77aa-22", "run_id": "run_9"})
    ids.learn({"id": "0f8e-11"}, {"id": "other"})  # the first mapping wins
    text = 'data: {"id": "0f8e-11", "run_id": "run_1", "next": "run_12", "file": "file-abc"}'
    assert ids.rewrite(text) == 'data: {"id": "77aa-22", "run_id": "run_9", "next": "run_12", "file": "file-xyz"}'
    assert ids.restore("/threads/t/runs/run_9?after=77aa-22") == "/threads/t/runs/run_1?after=0f8e-11"


def test_fresh_ids_keep_the_shape():
    taken = {"call_ABC123xyz"}
    fresh = fresh_like("call_ABC123xyz", taken)
    assert fresh.startswith("call_") and len(fresh) == len("call_ABC123xyz") and fresh not in taken
    assert len(fresh_like("thread_9", set())) == len("thread_") + 8
    uuid = fresh_like("1b4e28ba-2fa1-11d2", set())
    assert [i for i, c in enumerate(uuid) if c == "-"] == [8, 13] and len(uuid) == 18


# --- the JSON diff and pacing ------------------------------------------------------------------


def test_json_diff_paths_and_missing_keys():
    a = {"tools": [{"type": "x"}], "meta": {"k": 1}, "gone": None, "n": 1}
    b = {"tools": [{"type": "y"}], "meta": {"k": 1, "new": True}, "n": 1}
    assert json_diff(a, b, "body") == [
        ("body.gone", None, MISSING),
        ("body.meta.new", MISSING, True),
        ("body.tools[0].type", "x", "y"),
    ]
    assert json_diff(a, b, "$", missing=None, skip=lambda key: key == "tools") == [("$.meta.new", None, True)]
    assert json_diff([1, 2], [1], "$") == [("$", [1, 2], [1])]
    assert json.loads(json.dumps(a)) == a


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_speed_must_be_finite_and_not_negative(bad):
    with pytest.raises(RuntapError, match="--speed must be"):
        check_speed(bad)


def test_scaled_time():
    assert check_speed(0) == 0 and scaled(3.0, 0) == 0 and scaled(3.0, 1) == 3.0 and scaled(3.0, 2) == 1.5
