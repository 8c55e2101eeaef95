"""HTTP routes: the Assistants endpoints runtap needs and the Responses/Conversations ones
(`response_routes`), under any path prefix (`/v1`, Azure's `/openai`, none)."""

from __future__ import annotations

import json

from aiohttp import web

from runtap.simulator.engine import Engine
from runtap.simulator.ids import new_id
from runtap.simulator.middleware import (
    CONFIG,
    CUT_AFTER,
    HTTP_FAULTS,
    OPERATIONS,
    add_common_headers,
    api_middleware,
    read_body,
    request_text,
)
from runtap.simulator.objects import ApiError
from runtap.simulator.response_routes import RESPONSES
from runtap.simulator.response_routes import ROUTES as RESPONSE_ROUTES
from runtap.simulator.sse import stream_run
from runtap.simulator.state import RunState, paginate
from runtap.simulator.truth import ground_truth

ENGINE = web.AppKey("engine", Engine)


async def create_assistant(request: web.Request) -> web.Response:
    """createAssistant: POST /assistants."""
    body = await read_body(request)
    return web.json_response(_engine(request).store.add_assistant(new_id("asst"), body))


async def get_assistant(request: web.Request) -> web.Response:
    """getAssistant: GET /assistants/{assistant_id}."""
    return web.json_response(_engine(request).store.assistant(request.match_info["assistant_id"]))


async def create_thread(request: web.Request) -> web.Response:
    """createThread: POST /threads, with optional initial `messages`."""
    return web.json_response(_engine(request).store.add_thread(await read_body(request)))


async def get_thread(request: web.Request) -> web.Response:
    """getThread: GET /threads/{thread_id}."""
    return web.json_response(_engine(request).store.thread(request.match_info["thread_id"]))


async def create_message(request: web.Request) -> web.Response:
    """createMessage: POST /threads/{thread_id}/messages."""
    store = _engine(request).store
    return web.json_response(store.add_message(request.match_info["thread_id"], await read_body(request)))


async def list_messages(request: web.Request) -> web.Response:
    """listMessages: GET /threads/{thread_id}/messages (optionally filtered by `run_id`)."""
    store = _engine(request).store
    thread_id = request.match_info["thread_id"]
    store.thread(thread_id)
    messages = store.messages[thread_id]
    if "run_id" in request.query:
        messages = [m for m in messages if m["run_id"] == request.query["run_id"]]
    return web.json_response(paginate(messages, dict(request.query)))


async def create_run(request: web.Request) -> web.StreamResponse:
    """createRun: POST /threads/{thread_id}/runs (JSON or, with `stream`, SSE)."""
    body = await read_body(request)
    engine = _engine(request)
    run = engine.create_run(request.match_info["thread_id"], body, "createRun", request_text(request, body))
    return await _run_response(request, engine, run, body, prelude=[])


async def create_thread_and_run(request: web.Request) -> web.StreamResponse:
    """createThreadAndRun: POST /threads/runs; a stream starts with `thread.created`."""
    body = await read_body(request)
    engine = _engine(request)
    if not isinstance(body.get("assistant_id"), str) or not body["assistant_id"]:
        # checked before creating the thread, so a bad request leaves nothing behind
        raise ApiError(
            400, "Missing required parameter: 'assistant_id'.", param="assistant_id", code="missing_required_parameter"
        )
    thread_body = body.get("thread") or {}
    if not isinstance(thread_body, dict):
        raise ApiError(400, "Invalid type for 'thread': expected an object.", param="thread")
    thread = engine.store.add_thread(thread_body)
    run_body = {k: v for k, v in body.items() if k != "thread"}
    run = engine.create_run(thread["id"], run_body, "createThreadAndRun", request_text(request, body))
    prelude = [("thread.created", json.dumps(thread, separators=(",", ":")))]
    return await _run_response(request, engine, run, body, prelude=prelude)


async def list_runs(request: web.Request) -> web.Response:
    """listRuns: GET /threads/{thread_id}/runs with limit/order/after/before."""
    engine = _engine(request)
    thread_id = request.match_info["thread_id"]
    engine.store.thread(thread_id)
    page = paginate([r.obj for r in engine.store.thread_runs[thread_id]], dict(request.query))
    for obj in page["data"]:
        engine.note_served(obj["id"], obj["status"])
    return web.json_response(page)


async def get_run(request: web.Request) -> web.Response:
    """getRun: GET /threads/{thread_id}/runs/{run_id}."""
    return _run_json(request, _run(request))


async def modify_run(request: web.Request) -> web.Response:
    """modifyRun: POST /threads/{thread_id}/runs/{run_id} (only `metadata` may change)."""
    run = _run(request)
    body = await read_body(request)
    unknown = sorted(set(body) - {"metadata"})
    if unknown:
        raise ApiError(400, f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    metadata = body.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise ApiError(400, "Invalid type for 'metadata': expected a map of strings.", param="metadata")
    if metadata is not None:
        run.obj["metadata"] = metadata
    return _run_json(request, run)


async def cancel_run(request: web.Request) -> web.Response:
    """cancelRun: POST /threads/{thread_id}/runs/{run_id}/cancel."""
    run = _run(request)
    _engine(request).cancel_run(run)
    return _run_json(request, run)


async def submit_tool_outputs(request: web.Request) -> web.StreamResponse:
    """submitToolOutputsToRun; a stream starts with the tool step's `step.completed`."""
    run = _run(request)
    body = await read_body(request)
    engine = _engine(request)
    queue = engine.subscribe(run) if body.get("stream") else None
    try:
        engine.submit_tool_outputs(run, body)
    except ApiError:
        if queue is not None:
            engine.unsubscribe(run, queue)
        raise
    if queue is None:
        return _run_json(request, run)
    return await stream_run(request, engine, run, queue, request.get(CUT_AFTER))


async def list_run_steps(request: web.Request) -> web.Response:
    """listRunSteps: GET /threads/{thread_id}/runs/{run_id}/steps."""
    return web.json_response(paginate(_run(request).steps, dict(request.query)))


async def get_run_step(request: web.Request) -> web.Response:
    """getRunStep: GET /threads/{thread_id}/runs/{run_id}/steps/{step_id}."""
    run = _run(request)
    return web.json_response(_engine(request).store.step(run, request.match_info["step_id"]))


async def get_ground_truth(request: web.Request) -> web.Response:
    """GET /__sim/ground_truth: what the simulator served so far (see `truth.ground_truth`)."""
    return web.json_response(ground_truth(_engine(request), request.app[HTTP_FAULTS]))


ROUTES = [
    ("POST", "/assistants", create_assistant, "createAssistant"),
    ("GET", "/assistants/{assistant_id}", get_assistant, "getAssistant"),
    ("POST", "/threads", create_thread, "createThread"),
    ("POST", "/threads/runs", create_thread_and_run, "createThreadAndRun"),
    ("GET", "/threads/{thread_id}", get_thread, "getThread"),
    ("POST", "/threads/{thread_id}/messages", create_message, "createMessage"),
    ("GET", "/threads/{thread_id}/messages", list_messages, "listMessages"),
    ("POST", "/threads/{thread_id}/runs", create_run, "createRun"),
    ("GET", "/threads/{thread_id}/runs", list_runs, "listRuns"),
    ("GET", "/threads/{thread_id}/runs/{run_id}", get_run, "getRun"),
    ("POST", "/threads/{thread_id}/runs/{run_id}", modify_run, "modifyRun"),
    ("POST", "/threads/{thread_id}/runs/{run_id}/cancel", cancel_run, "cancelRun"),
    ("POST", "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", submit_tool_outputs, "submitToolOutputsToRun"),
    ("GET", "/threads/{thread_id}/runs/{run_id}/steps", list_run_steps, "listRunSteps"),
    ("GET", "/threads/{thread_id}/runs/{run_id}/steps/{step_id}", get_run_step, "getRunStep"),
]


# Any path prefix: `/v1` (OpenAI), `/openai` (Azure OpenAI), a gateway's own, or none.
API_PREFIX = "/{api_prefix:(?:[^/]+/)*}"


def build_app(engine: Engine, http_faults: list[dict]) -> web.Application:
    """The aiohttp application serving `engine`; HTTP faults served are appended to `http_faults`."""
    app = web.Application(middlewares=[api_middleware])
    app[ENGINE] = engine
    app[RESPONSES] = engine.responses
    app[CONFIG] = engine.config
    app[HTTP_FAULTS] = http_faults
    routes = ROUTES + RESPONSE_ROUTES
    app[OPERATIONS] = {handler: op for _, _, handler, op in routes}
    for method, path, handler, _ in routes:
        app.router.add_route(method, API_PREFIX + path.removeprefix("/"), handler)
    app.router.add_get("/__sim/ground_truth", get_ground_truth)
    app.on_response_prepare.append(add_common_headers)
    return app


async def _run_response(
    request: web.Request, engine: Engine, run: RunState, body: dict, prelude: list[tuple[str, str]]
) -> web.StreamResponse:
    if not body.get("stream"):
        return _run_json(request, run)
    queue = engine.subscribe(run)
    for event, data in prelude:
        queue.put_nowait((event, data, None))
    return await stream_run(request, engine, run, queue, request.get(CUT_AFTER))


def _run_json(request: web.Request, run: RunState) -> web.Response:
    engine = _engine(request)
    engine.note_served(run.obj["id"], run.obj["status"])
    headers = {"openai-poll-after-ms": str(engine.config.poll_after_ms)}
    return web.json_response(run.obj, headers=headers)


def _run(request: web.Request) -> RunState:
    info = request.match_info
    return _engine(request).store.run(info["thread_id"], info["run_id"])


def _engine(request: web.Request) -> Engine:
    return request.app[ENGINE]
