"""Observing responses (JSON and SSE) and learning/applying the recorded -> replayed id mapping."""

from __future__ import annotations

import json

from runtap.recordings import toolcalls
from runtap.recordings.ids import IdMap
from runtap.replay.observe import merge_polls, observe


def run(rid: str, thread: str, status: str, calls: list[tuple[str, str, dict]] = (), usage=None) -> dict:
    action = None
    if calls:
        action = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
                    for cid, name, args in calls
                ]
            },
        }
    return {
        "id": rid,
        "object": "thread.run",
        "thread_id": thread,
        "assistant_id": "asst_1",
        "status": status,
        "model": "gpt-4o",
        "required_action": action,
        "usage": usage,
        "created_at": 1,
    }


def sse(*events: tuple[str, dict | str]) -> str:
    return "".join(f"event: {name}\ndata: {d if isinstance(d, str) else json.dumps(d)}\n\n" for name, d in events)


def step(sid: str, rid: str, status: str, details: dict) -> dict:
    return {
        "id": sid,
        "object": "thread.run.step",
        "run_id": rid,
        "type": details["type"],
        "status": status,
        "step_details": details,
    }


def streamed_tool_run(rid: str, thread: str, sid: str, call: str) -> str:
    created = step(sid, rid, "in_progress", {"type": "tool_calls", "tool_calls": []})
    return sse(
        ("thread.run.created", run(rid, thread, "queued")),
        ("thread.run.step.created", created),
        (
            "thread.run.step.delta",
            {
                "id": sid,
                "object": "thread.run.step.delta",
                "delta": {
                    "step_details": {
                        "type": "tool_calls",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call,
                                "type": "function",
                                "function": {"name": "weather", "arguments": ""},
                            }
                        ],
                    }
                },
            },
        ),
        (
            "thread.run.step.delta",
            {
                "id": sid,
                "object": "thread.run.step.delta",
                "delta": {
                    "step_details": {
                        "type": "tool_calls",
                        "tool_calls": [{"index": 0, "type": "function", "function": {"arguments": '{"city": '}}],
                    }
                },
            },
        ),
        (
            "thread.run.step.delta",
            {
                "id": sid,
                "object": "thread.run.step.delta",
                "delta": {
                    "step_details": {
                        "type": "tool_calls",
                        "tool_calls": [{"index": 0, "type": "function", "function": {"arguments": '"Oslo"}'}}],
                    }
                },
            },
        ),
        ("thread.run.requires_action", run(rid, thread, "requires_action", [(call, "weather", {"city": "Oslo"})])),
        ("done", "[DONE]"),
    )


def test_observe_stream_accumulates_step_deltas_and_keeps_statuses():
    obs = observe(200, streamed_tool_run("run_1", "thread_1", "step_1", "call_1"), streamed=True)
    assert obs.events[:3] == ["thread.run.created", "thread.run.step.created", "thread.run.step.delta"]
    assert obs.events[-1] == "done"
    assert obs.run_statuses == [("run_1", "queued"), ("run_1", "requires_action")]
    (st,) = obs.of("step")
    call = st["step_details"]["tool_calls"][0]
    assert call["function"] == {"name": "weather", "arguments": '{"city": "Oslo"}'}
    assert obs.created_ids() == {"run_1", "step_1", "call_1"}


def test_observe_json_list_error_and_garbage():
    listed = observe(
        200,
        json.dumps({"object": "list", "data": [run("run_1", "t", "completed"), run("run_2", "t", "failed")]}),
        streamed=False,
    )
    assert [r["id"] for r in listed.of("run")] == ["run_1", "run_2"]
    err = observe(500, json.dumps({"error": {"message": "boom", "type": "server_error"}}), streamed=False)
    assert err.error == "boom" and err.of("run") == []
    assert "not JSON" in observe(200, "<html>", streamed=False).error


def test_merge_polls_keeps_every_status_and_the_last_objects():
    polls = [
        observe(200, json.dumps(run("run_1", "t", s)), streamed=False) for s in ("queued", "in_progress", "completed")
    ]
    merged = merge_polls(polls)
    assert [s for _, s in merged.run_statuses] == ["queued", "in_progress", "completed"]
    assert merged.of("run")[0]["status"] == "completed"


def test_learn_from_streams_then_rewrite_path_and_tool_outputs():
    rec = observe(200, streamed_tool_run("run_old", "thread_old", "step_old", "call_old"), streamed=True)
    rep = observe(200, streamed_tool_run("run_new", "thread_new", "step_new", "call_new"), streamed=True)
    ids = IdMap({"asst_1": "asst_9"}, expected=rec.created_ids() | {"thread_old"})
    assert ids.missing("/v1/threads/thread_old/runs/run_old") == ["run_old", "thread_old"]
    ids.learn(rec.shown(), rep.shown())
    assert ids.missing("/v1/threads/thread_old/runs/run_old") == []
    assert (
        ids.rewrite("/v1/threads/thread_old/runs/run_old/steps?after=step_old&limit=5")
        == "/v1/threads/thread_new/runs/run_new/steps?after=step_new&limit=5"
    )
    body = ids.rewrite(
        '{"tool_outputs": [{"tool_call_id": "call_old", "output": "run_old"}], "assistant_id": "asst_1"}'
    )
    assert json.loads(body) == {
        "tool_outputs": [{"tool_call_id": "call_new", "output": "run_new"}],
        "assistant_id": "asst_9",
    }
    assert ids.rewrite("not json") == "not json"
    assert ids.rewrite(None) is None


def test_parallel_tool_calls_pair_by_name_and_arguments_not_position():
    rec = observe(
        200,
        json.dumps(
            run(
                "run_a",
                "t",
                "requires_action",
                [
                    ("call_a1", "weather", {"city": "Oslo"}),
                    ("call_a2", "weather", {"city": "Rome"}),
                    ("call_a3", "time", {"tz": "UTC"}),
                ],
            )
        ),
        streamed=False,
    )
    rep = observe(
        200,
        json.dumps(
            run(
                "run_b",
                "t",
                "requires_action",
                [
                    ("call_b1", "time", {"tz": "UTC"}),
                    ("call_b2", "weather", {"city": "Rome"}),
                    ("call_b3", "weather", {"city": "Oslo"}),
                ],
            )
        ),
        streamed=False,
    )
    ids = IdMap()
    ids.learn(rec.shown(), rep.shown())
    assert {k: v for k, v in ids.items().items() if k.startswith("call")} == {
        "call_a1": "call_b3",
        "call_a2": "call_b2",
        "call_a3": "call_b1",
    }


def test_tool_call_pairing_falls_back_to_name_then_position():
    def call(cid, name, args):
        return toolcalls.ToolCall(cid, "function", name, args)

    pairs = toolcalls.pair(
        [call("a", "f", {"x": 1}), call("b", "g", {})],
        [call("c", "renamed", {}), call("d", "f", {"x": 2}), call("e", "h", {})],
    )
    assert [(a and a.id, b and b.id) for a, b in pairs] == [("a", "d"), ("b", "c"), (None, "e")]
    assert toolcalls.parse_arguments('{"b": 1,  "a": 2}') == {"a": 2, "b": 1}
    assert toolcalls.parse_arguments("not json") == "not json"
