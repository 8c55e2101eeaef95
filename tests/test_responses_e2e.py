"""Acceptance, end to end: the official openai SDK drives the Responses and Conversations APIs
through a real `runtap proxy` process in front of the simulator, and the store's contract views
(`responses`, `response_transitions`, `response_function_calls`) equal the simulator's ground
truth (`GET /__sim/ground_truth`): per-model counts and token sums, final statuses, the statuses
of background responses, function calls; exchange timings and streamed events are recorded."""

from __future__ import annotations

from collections import defaultdict

import duckdb
import httpx
import pytest
from openai import OpenAI

from runtap.analysis import run_report
from runtap.demo.harness import start_proxy
from runtap.demo.response_workload import TOOLS, run_responses_workload
from runtap.demo.workload import ASSISTANTS
from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator

KEY = "sk-responses-e2e-secret-0123456789"
TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")


def _explicit_calls(base_url: str) -> dict:
    """The calls the acceptance names, one by one (the demo workload covers them too, in a story)."""
    client = OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=30)
    plain = client.responses.create(model="gpt-4o", input="Tell me about Oslo [complete]")
    called = client.responses.create(
        model="gpt-4o", input="What is the weather in Paris?", tools=TOOLS, metadata={"sim_outcome": "completed"}
    )
    outputs = [
        {"type": "function_call_output", "call_id": item.call_id, "output": '{"temp_c": 21}'}
        for item in called.output
        if item.type == "function_call"
    ]
    answered = client.responses.create(model="gpt-4o", previous_response_id=called.id, input=outputs, tools=TOOLS)
    background = client.responses.create(
        model="o3-mini", input="Prove it [complete]", background=True, metadata={"sim_outcome": "completed"}
    )
    polls = 0
    while background.status in ("queued", "in_progress"):
        background = client.responses.retrieve(background.id)
        polls += 1
    to_cancel = client.responses.create(
        model="gpt-4o-mini", input="A long essay", background=True, metadata={"sim_outcome": "slow"}
    )
    cancelled = client.responses.cancel(to_cancel.id)
    conversation = client.conversations.create()
    client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "Hello from the test"}]
    )
    in_conversation = client.responses.create(
        model="gpt-4o-mini", conversation=conversation.id, input="Reply briefly [complete]"
    )
    listed = list(client.conversations.items.list(conversation.id))
    return {
        "plain": plain,
        "called": called,
        "outputs": outputs,
        "answered": answered,
        "background": background,
        "polls": polls,
        "cancelled": cancelled,
        "conversation": conversation,
        "in_conversation": in_conversation,
        "listed": listed,
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(read-only connection, ground truth, explicit calls, workload result, proxy exit code, log, db)."""
    db = str(tmp_path_factory.mktemp("responses-e2e") / "store.duckdb")
    with start_simulator(SimConfig(seed=5, run_ms=80, assistants=ASSISTANTS)) as sim:
        proxy = start_proxy(sim.url, db)
        try:
            calls = _explicit_calls(proxy.base_url)
            workload = run_responses_workload(proxy.base_url, api_key=KEY)
        finally:
            code = proxy.stop()
        truth = httpx.get(f"{sim.url}/__sim/ground_truth").json()
    con = duckdb.connect(db, read_only=True)
    yield con, truth, calls, workload, code, proxy.log_text(), db
    con.close()


def test_the_proxy_recorded_every_exchange_without_errors(recorded):
    con, truth, calls, _, code, log, _ = recorded
    assert code == 0, log
    operations = dict(con.execute("SELECT operation, count(*) FROM exchanges GROUP BY ALL").fetchall())
    assert {
        "createResponse",
        "getResponse",
        "cancelResponse",
        "listInputItems",
        "createConversation",
        "createConversationItems",
        "listConversationItems",
    } <= set(operations)
    assert operations["getResponse"] >= calls["polls"]
    errors = con.execute("SELECT operation, error FROM exchanges WHERE error IS NOT NULL").fetchall()
    assert errors == []
    # Every exchange on a response names it; every conversation call names its conversation.
    unnamed = con.execute(
        """SELECT count(*) FROM exchanges WHERE operation IN ('createResponse', 'getResponse', 'cancelResponse',
           'listInputItems') AND response_id IS NULL"""
    ).fetchone()[0]
    assert unnamed == 0
    conversations = {c["id"] for c in truth["conversations"]}
    sql = "SELECT DISTINCT conversation_id FROM exchanges WHERE conversation_id IS NOT NULL"
    seen = {r for (r,) in con.execute(sql).fetchall()}
    assert seen == conversations


def test_every_served_response_is_recorded_with_its_final_status(recorded):
    con, truth, calls, workload, *_ = recorded
    recorded_statuses = dict(con.execute("SELECT response_id, status FROM responses").fetchall())
    expected = {r["id"]: r["status"] for r in truth["responses"]}
    assert recorded_statuses == expected
    assert {"completed", "cancelled", "failed", "incomplete"} <= set(expected.values())
    assert {rid: r["status"] for rid, r in workload.responses.items()} == {
        rid: expected[rid] for rid in workload.responses
    }
    assert calls["cancelled"].status == expected[calls["cancelled"].id] == "cancelled"
    attributes = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT response_id, model, background, conversation_id, previous_response_id FROM responses"
        ).fetchall()
    }
    for response in truth["responses"]:
        model, background, conversation, previous = attributes[response["id"]]
        assert (model, background, conversation, previous) == (
            response["model"],
            response["background"],
            response["conversation_id"],
            response["previous_response_id"],
        ), response["id"]


def test_counts_and_token_sums_per_model_equal_ground_truth(recorded):
    con, truth, *_ = recorded
    got = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT model, count(*), {', '.join(f'sum({t})' for t in TOKENS)} FROM responses GROUP BY model"
        ).fetchall()
    }
    expected: dict[str, list] = defaultdict(lambda: [0] + [None] * len(TOKENS))
    for response in truth["responses"]:
        sums = expected[response["model"]]
        sums[0] += 1
        for i, token in enumerate(TOKENS, 1):
            if response["usage"]:
                sums[i] = (sums[i] or 0) + response["usage"][token]
    assert got == {model: tuple(sums) for model, sums in expected.items()}
    assert len(got) >= 4
    assert any(sums[4] for sums in got.values())  # cached tokens (previous_response_id, conversations)
    assert any(sums[5] for sums in got.values())  # reasoning tokens (o3-mini)


def test_status_sequences_equal_what_was_served(recorded):
    con, truth, *_ = recorded
    first = dict(
        con.execute(
            """SELECT response_id, arg_min(status, (observed_at, request_started_at, exchange_id, seq))
               FROM response_snapshots GROUP BY ALL"""
        ).fetchall()
    )
    sequences = {rid: [status] for rid, status in first.items()}
    rows = con.execute("SELECT response_id, seq, from_status, to_status FROM response_transitions ORDER BY ALL")
    for rid, seq, from_status, to_status in rows.fetchall():
        assert sequences[rid][-1] == from_status and len(sequences[rid]) == seq
        sequences[rid].append(to_status)
    expected = {r["id"]: r["served_statuses"] for r in truth["responses"]}
    assert sequences == expected
    background = [r for r in truth["responses"] if r["background"]]
    assert any(r["served_statuses"] == ["queued", "in_progress", "completed"] for r in background)
    for response in background:
        assert sequences[response["id"]] == response["served_statuses"]


def test_function_calls_equal_ground_truth_and_know_their_outputs(recorded):
    con, truth, calls, *_ = recorded
    got = {
        (rid, call_id): (name, arguments)
        for rid, call_id, name, arguments in con.execute(
            "SELECT response_id, call_id, name, arguments FROM response_function_calls"
        ).fetchall()
    }
    expected = {
        (r["id"], c["call_id"]): (c["name"], c["arguments"]) for r in truth["responses"] for c in r["function_calls"]
    }
    assert got == expected
    assert len({r["id"] for r in truth["responses"] if r["function_calls"]}) >= 2  # one streamed, one not
    answered = {
        call_id: (output, to)
        for call_id, output, to in con.execute(
            "SELECT call_id, output, output_response_id FROM response_function_calls"
        ).fetchall()
    }
    for item in calls["outputs"]:
        assert answered[item["call_id"]] == (item["output"], calls["answered"].id)


def test_streams_are_recorded_event_by_event_with_timings(recorded):
    con, *_ = recorded
    streams = con.execute(
        """SELECT e.exchange_id, e.sse_events, count(s.seq), min(s.sequence_number), max(s.sequence_number),
                  bool_and(s.event LIKE 'response.%'), max(s.received_at) > min(s.received_at),
                  e.ttfb_ms IS NOT NULL AND e.duration_ms >= e.ttfb_ms AND e.first_byte_at IS NOT NULL
           FROM exchanges e JOIN sse_events s USING (exchange_id)
           WHERE e.operation = 'createResponse' AND e.streamed GROUP BY ALL"""
    ).fetchall()
    assert len(streams) >= 2  # the streamed question and its function_call_output follow-up
    for _, announced, events, low, high, named, spread, timed in streams:
        assert announced == events == high + 1 and low == 0
        assert named and spread and timed
    timed = con.execute(
        "SELECT count(*) FILTER (WHERE duration_ms IS NULL OR ttfb_ms IS NULL), count(*) FROM exchanges"
    ).fetchone()
    assert timed[0] == 0 and timed[1] > 20


def test_conversation_items_are_recorded(recorded):
    con, truth, calls, *_ = recorded
    conversation = calls["conversation"].id
    items = con.execute(
        """SELECT i.item_id, i.type, i.role FROM response_items i JOIN exchanges e USING (exchange_id)
           WHERE i.conversation_id = ? AND e.operation = 'listConversationItems'
           ORDER BY e.request_started_at, i.item_index""",
        [conversation],
    ).fetchall()
    assert [(i[0], i[1]) for i in items] == [(item.id, item.type) for item in calls["listed"]]
    (served,) = [c for c in truth["conversations"] if c["id"] == conversation]
    assert served["responses"] == [calls["in_conversation"].id]


def test_report_tokens_for_responses_equals_ground_truth(recorded):
    _, truth, *_, db = recorded
    rows = {row["model"]: row for row in run_report(db, "tokens", api="responses").main.to_dicts()}
    expected: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for response in truth["responses"]:
        sums = expected[response["model"]]
        sums["responses"] += 1
        for token in TOKENS:
            sums[token] += (response["usage"] or {}).get(token, 0)
    assert set(rows) == set(expected)
    for model, sums in expected.items():
        assert rows[model]["responses"] == sums["responses"], model
        for token in TOKENS:
            assert (rows[model][token] or 0) == sums[token], (model, token)
        assert rows[model]["cost_usd"] is not None  # every model the workload uses has a price
