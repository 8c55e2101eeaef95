"""Record `realworld.duckdb`: Assistants traffic shaped like public recordings of the hosted API.

    .venv/bin/python sample_captures/realworld.py

The hosted Assistants API is gone, and the simulator speaks the spec. Real traffic was messier,
so this script plays a fixed transcript of it through a real `runtap proxy`: a small upstream on
127.0.0.1 answers each request with the recorded-looking answer below, and httpx sends the
requests (runtap's own HTTP, as an app with its own client would). What the transcript carries,
each seen in public recordings:

- a stream whose `thread.run.completed` event carries `"status": "incomplete"`;
- polls that skip states (queued -> completed); requires_action -> queued after tool outputs;
- run steps with `expires_at` instead of `expired_at` and without `metadata`;
- v1 runs with no `usage` or `required_action` keys and with `file_ids` (and a `retrieval` tool);
- header names cased `Openai-Processing-Ms` and `X-Request-ID`; gzip-encoded JSON bodies;
  pretty-printed JSON (SSE data lines compact);
- URLs with `include[]=step_details.tool_calls[*].file_search.results[*].content`
  percent-encoded, and with a bare `?`;
- a createThreadAndRun stream starting with `thread.created`; a submit_tool_outputs stream
  starting with the tool step's `thread.run.step.completed`, then `thread.run.queued`;
- a run that expired waiting for tool outputs, and a thread seen only through listRuns and
  getRunStep (the proxy started after the run).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
import threading
from collections.abc import Iterator

import httpx
from aiohttp import web

from runtap.demo.harness import start_proxy

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = "include%5B%5D=step_details.tool_calls%5B%2A%5D.file_search.results%5B%2A%5D.content"
T = 1718035200  # the API's own timestamps, Unix seconds
WEATHER_FN = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def run(run_id: str, thread: str, status: str, *, v1: bool = False, **extra) -> dict:
    """A run object as the hosted API sent it (v1: no usage or required_action keys, file_ids)."""
    obj = {
        "id": run_id,
        "object": "thread.run",
        "created_at": T,
        "assistant_id": "asst_realWeather01",
        "thread_id": thread,
        "status": status,
        "started_at": None if status == "queued" else T + 1,
        "expires_at": T + 600,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": T + 4 if status in ("completed", "incomplete") else None,
        "last_error": None,
        "model": "gpt-4-turbo" if v1 else "gpt-4o",
        "instructions": "You are a weather bot. Use the tools.",
        "tools": [{"type": "function", "function": WEATHER_FN}] + ([{"type": "retrieval"}] if v1 else []),
        "metadata": {},
    }
    if v1:
        return obj | {"file_ids": ["file-abc123"]} | extra
    return (
        obj
        | {
            "required_action": None,
            "usage": None,
            "temperature": 1.0,
            "top_p": 1.0,
            "tool_resources": {},
            "max_prompt_tokens": None,
            "max_completion_tokens": None,
            "truncation_strategy": {"type": "auto", "last_messages": None},
            "incomplete_details": None,
            "response_format": "auto",
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "reasoning_effort": None,
        }
        | extra
    )


def asks(call_id: str, city: str) -> dict:
    """`required_action` asking for the weather in `city`."""
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [call]}}


def usage(prompt: int, completion: int) -> dict:
    """Run or step usage."""
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def step(step_id: str, run_id: str, thread: str, kind: str, status: str, details: dict, **extra) -> dict:
    """A run step as seen in the wild: `expires_at` (not `expired_at`) and no `metadata`."""
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": T + 1,
        "run_id": run_id,
        "assistant_id": "asst_realWeather01",
        "thread_id": thread,
        "type": kind,
        "status": status,
        "cancelled_at": None,
        "completed_at": T + 3 if status == "completed" else None,
        "expires_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": details,
        "usage": None,
    } | extra


def message(msg_id: str, thread: str, role: str, text: str, **extra) -> dict:
    """A message object."""
    content = [{"type": "text", "text": {"value": text, "annotations": []}}]
    return {
        "id": msg_id,
        "object": "thread.message",
        "created_at": T,
        "thread_id": thread,
        "role": role,
        "content": content,
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "metadata": {},
    } | extra


def thread(thread_id: str) -> dict:
    """A thread object."""
    return {"id": thread_id, "object": "thread", "created_at": T, "metadata": {}, "tool_resources": {}}


def msg_creation(step_id: str, run_id: str, thread_id: str, msg_id: str, status="completed", **extra) -> dict:
    """A message_creation step."""
    details = {"type": "message_creation", "message_creation": {"message_id": msg_id}}
    return step(step_id, run_id, thread_id, "message_creation", status, details, **extra)


def tool_step(step_id: str, run_id: str, thread_id: str, call_id: str, city: str, status: str, output=None) -> dict:
    """A tool_calls step with one function call."""
    function = {"name": "get_weather", "arguments": json.dumps({"city": city}), "output": output}
    details = {"type": "tool_calls", "tool_calls": [{"id": call_id, "type": "function", "function": function}]}
    return step(step_id, run_id, thread_id, "tool_calls", status, details)


def call_deltas(step_id: str, call_id: str, city: str) -> list[tuple[str, dict]]:
    """A tool call streamed: its head, then its arguments in two pieces."""
    args = json.dumps({"city": city})
    head = {"index": 0, "id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    pieces = [{"index": 0, "type": "function", "function": {"arguments": part}} for part in (args[:6], args[6:])]
    return [
        (
            "thread.run.step.delta",
            {
                "id": step_id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [p]}},
            },
        )
        for p in [head, *pieces]
    ]


def text_delta(msg_id: str, text: str) -> tuple[str, dict]:
    """A message delta."""
    part = {"index": 0, "type": "text", "text": {"value": text}}
    return "thread.message.delta", {"id": msg_id, "object": "thread.message.delta", "delta": {"content": [part]}}


def transcript() -> Iterator[dict]:
    """Every exchange, in order: the request (method, path, body) and the answer to give."""
    # A: v1, polled; a bare `?`; polls skip in_progress; steps listed with include[] percent-encoded.
    a, ra = "thread_rwPolledV1", "run_rwPolledV1"
    yield _json("POST", "/v1/threads", {"messages": [{"role": "user", "content": "Is it sunny in Paris?"}]}, thread(a))
    yield _json("POST", f"/v1/threads/{a}/runs", {"assistant_id": "asst_realWeather01"}, run(ra, a, "queued", v1=True))
    yield _json("GET", f"/v1/threads/{a}/runs/{ra}?", None, run(ra, a, "queued", v1=True))
    yield _json("GET", f"/v1/threads/{a}/runs/{ra}?", None, run(ra, a, "completed", v1=True))
    steps = {"object": "list", "data": [msg_creation("step_rwA1", ra, a, "msg_rwA1")], "has_more": False}
    yield _json("GET", f"/v1/threads/{a}/runs/{ra}/steps?{INCLUDE}", None, steps)

    # B: createThreadAndRun streamed; starts with thread.created; completed event, incomplete run.
    b, rb = "thread_rwStreamed", "run_rwIncomplete"
    body = {"assistant_id": "asst_realWeather01", "stream": True}
    body["thread"] = {"messages": [{"role": "user", "content": "Write a long poem about rain."}]}
    out = message("msg_rwB1", b, "assistant", "", run_id=rb, status="in_progress")
    events = [
        ("thread.created", thread(b)),
        ("thread.run.created", run(rb, b, "queued")),
        ("thread.run.queued", run(rb, b, "queued")),
        ("thread.run.in_progress", run(rb, b, "in_progress")),
        ("thread.run.step.created", msg_creation("step_rwB1", rb, b, "msg_rwB1", status="in_progress")),
        ("thread.message.created", out),
        text_delta("msg_rwB1", "Rain on the roof, "),
        text_delta("msg_rwB1", "rain on the"),
        ("thread.message.incomplete", out | {"status": "incomplete"}),
        ("thread.run.step.completed", msg_creation("step_rwB1", rb, b, "msg_rwB1", usage=usage(40, 12))),
        (
            "thread.run.completed",
            run(rb, b, "incomplete", usage=usage(40, 12), incomplete_details={"reason": "max_completion_tokens"}),
        ),
    ]
    yield _sse("POST", "/v1/threads/runs", body, events)

    # C: streamed tool call; submit_tool_outputs stream starts with step.completed, then run.queued.
    c, rc = "thread_rwToolStream", "run_rwToolStream"
    yield _json("POST", "/v1/threads", {}, thread(c))
    said = {"role": "user", "content": "Weather in Tokyo?"}
    yield _json("POST", f"/v1/threads/{c}/messages", said, message("msg_rwC0", c, "user", said["content"]))
    asked = run(rc, c, "requires_action", required_action=asks("call_rwC1", "Tokyo"))
    events = [
        ("thread.run.created", run(rc, c, "queued")),
        ("thread.run.queued", run(rc, c, "queued")),
        ("thread.run.in_progress", run(rc, c, "in_progress")),
        ("thread.run.step.created", tool_step("step_rwC1", rc, c, "call_rwC1", "Tokyo", "in_progress")),
        *call_deltas("step_rwC1", "call_rwC1", "Tokyo"),
        ("thread.run.requires_action", asked),
    ]
    yield _sse("POST", f"/v1/threads/{c}/runs", {"assistant_id": "asst_realWeather01", "stream": True}, events)
    outputs = {"tool_outputs": [{"tool_call_id": "call_rwC1", "output": '{"temp_c": 21}'}], "stream": True}
    reply = message("msg_rwC1", c, "assistant", "", run_id=rc, status="in_progress")
    events = [
        (
            "thread.run.step.completed",
            tool_step("step_rwC1", rc, c, "call_rwC1", "Tokyo", "completed", '{"temp_c": 21}'),
        ),
        ("thread.run.queued", run(rc, c, "queued")),
        ("thread.run.in_progress", run(rc, c, "in_progress")),
        ("thread.run.step.created", msg_creation("step_rwC2", rc, c, "msg_rwC1", status="in_progress")),
        ("thread.message.created", reply),
        text_delta("msg_rwC1", "It is 21 C in Tokyo."),
        ("thread.message.completed", reply | {"status": "completed"}),
        ("thread.run.step.completed", msg_creation("step_rwC2", rc, c, "msg_rwC1", usage=usage(90, 14))),
        ("thread.run.completed", run(rc, c, "completed", usage=usage(170, 30))),
    ]
    yield _sse("POST", f"/v1/threads/{c}/runs/{rc}/submit_tool_outputs", outputs, events)

    # D: polled; requires_action -> queued after tool outputs -> completed.
    d, rd = "thread_rwToolPolled", "run_rwToolPolled"
    yield _json("POST", "/v1/threads", {"messages": [{"role": "user", "content": "Weather in Dublin?"}]}, thread(d))
    yield _json("POST", f"/v1/threads/{d}/runs", {"assistant_id": "asst_realWeather01"}, run(rd, d, "queued"))
    yield _json(
        "GET",
        f"/v1/threads/{d}/runs/{rd}",
        None,
        run(rd, d, "requires_action", required_action=asks("call_rwD1", "Dublin")),
    )
    outputs = {"tool_outputs": [{"tool_call_id": "call_rwD1", "output": '{"temp_c": 12}'}]}
    yield _json("POST", f"/v1/threads/{d}/runs/{rd}/submit_tool_outputs", outputs, run(rd, d, "queued"))
    yield _json("GET", f"/v1/threads/{d}/runs/{rd}", None, run(rd, d, "completed", usage=usage(160, 28)))

    # E: the app never answered the tool call: the run expired.
    e, re_ = "thread_rwExpired", "run_rwExpired"
    yield _json("POST", "/v1/threads", {"messages": [{"role": "user", "content": "Weather in Oslo?"}]}, thread(e))
    yield _json("POST", f"/v1/threads/{e}/runs", {"assistant_id": "asst_realWeather01"}, run(re_, e, "queued"))
    yield _json(
        "GET",
        f"/v1/threads/{e}/runs/{re_}",
        None,
        run(re_, e, "requires_action", required_action=asks("call_rwE1", "Oslo")),
    )
    yield _json("GET", f"/v1/threads/{e}/runs/{re_}", None, run(re_, e, "expired", usage=usage(80, 9)))

    # F: the proxy started after this thread's run: only listings were recorded.
    f, rf = "thread_rwSeenLate", "run_rwSeenLate"
    runs = {"object": "list", "data": [run(rf, f, "completed", usage=usage(50, 10))], "has_more": False}
    yield _json("GET", f"/v1/threads/{f}/runs?limit=1", None, runs)
    yield _json("GET", f"/v1/threads/{f}/runs/{rf}/steps/step_rwF1", None, msg_creation("step_rwF1", rf, f, "msg_rwF1"))


def _json(method: str, path: str, body: dict | None, answer: dict) -> dict:
    return {"method": method, "path": path, "body": body, "json": answer}


def _sse(method: str, path: str, body: dict, events: list[tuple[str, dict]]) -> dict:
    return {"method": method, "path": path, "body": body, "events": events}


async def _answer(request: web.Request) -> web.StreamResponse:
    """Answer the next transcript entry (it must be the request that came)."""
    script = request.app[SCRIPT]
    entry = script.pop(0)
    if (request.method, request.raw_path) != (entry["method"], entry["path"]):
        return web.json_response(
            {"error": {"message": f"out of script: {request.method} {request.raw_path}"}}, status=599
        )
    headers = {
        "Openai-Processing-Ms": "187",
        "X-Request-ID": f"req_rw{entry['index']:04d}",
        "Openai-Version": "2020-10-01",
    }
    if "json" in entry:  # pretty-printed and gzip-encoded, as the hosted API sent JSON
        body = gzip.compress(json.dumps(entry["json"], indent=2).encode())
        headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return web.Response(body=body, headers=headers)
    response = web.StreamResponse(headers=headers | {"Content-Type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    for name, data in entry["events"]:
        await response.write(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
    await response.write(b"event: done\ndata: [DONE]\n\n")
    return response


SCRIPT = web.AppKey("script", list)


def _serve(entries: list[dict], ready: threading.Event, port: list[int], stop: threading.Event) -> None:
    async def main() -> None:
        app = web.Application()
        app[SCRIPT] = entries
        app.router.add_route("*", "/{tail:.*}", _answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(site._server.sockets[0].getsockname()[1])
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.cleanup()

    asyncio.run(main())


def record(db: str) -> int:
    """Play the transcript through a real `runtap proxy` into `db`; return how many exchanges were sent."""
    entries = [entry | {"index": i} for i, entry in enumerate(transcript())]
    requests = [(e["method"], e["path"], e["body"]) for e in entries]
    ready, stop, port = threading.Event(), threading.Event(), []
    server = threading.Thread(target=_serve, args=(entries, ready, port, stop), daemon=True)
    server.start()
    ready.wait(10)
    try:
        proxy = start_proxy(f"http://127.0.0.1:{port[0]}", db)
        try:
            root = proxy.base_url.removesuffix("/v1")
            with httpx.Client(
                base_url=root, timeout=30, headers={"Authorization": "Bearer sk-realworld-dummy"}
            ) as client:
                for method, path, body in requests:
                    sent = (
                        client.build_request(method, path, json=body)
                        if body is not None
                        else client.build_request(method, path)
                    )
                    sent.url = httpx.URL(root + path)  # exactly as written: a bare `?` and the encoding kept
                    answer = client.send(sent)
                    answer.read()
                    if answer.status_code != 200:
                        raise RuntimeError(f"{method} {path}: HTTP {answer.status_code} {answer.text[:200]}")
        finally:
            code = proxy.stop()
        if code != 0:
            raise RuntimeError(proxy.failure("stopped with an error"))
    finally:
        stop.set()
        server.join(10)
    return len(requests)


def main() -> int:
    """Rewrite sample_captures/realworld.duckdb."""
    db = os.path.join(HERE, "realworld.duckdb")
    for path in (db, db + ".wal"):
        if os.path.exists(path):
            os.remove(path)
    count = record(db)
    print(f"wrote {db} ({count} exchanges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
