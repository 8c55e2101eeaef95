"""Listing, pagination, run steps, errors and headers, through the SDK and raw HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest

from runtap.simulator.config import SimConfig
from runtap.simulator.server import start_simulator
from tests.spec_schemas import validate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
PRELOADED = [{"id": "asst_fixed", "model": "gpt-4-turbo", "instructions": "Fixed.", "tools": [TOOL]}]


@pytest.fixture(scope="module")
def sim():
    config = SimConfig(seed=5, run_ms=20, event_gap_ms=1, poll_after_ms=5, assistants=PRELOADED)
    with start_simulator(config) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(sim):
    return openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)


@pytest.fixture(scope="module")
def http(sim):
    with httpx.Client(base_url=sim.url, headers={"Authorization": "Bearer k"}, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def five_runs(client):
    """A thread with five finished runs, oldest first."""
    thread_id = client.beta.threads.create().id
    ids = []
    for i in range(5):
        client.beta.threads.messages.create(thread_id=thread_id, role="user", content=f"Question {i} [complete]")
        ids.append(client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id="asst_p").id)
    return thread_id, ids


def test_list_runs_paginates_with_limit_after_before_and_order(client, http, five_runs):
    thread_id, ids = five_runs
    runs = client.beta.threads.runs
    page = runs.list(thread_id=thread_id, limit=2)
    assert [r.id for r in page.data] == ids[::-1][:2] and page.has_more
    assert [r.id for r in runs.list(thread_id=thread_id, limit=2, after=ids[3]).data] == [ids[2], ids[1]]
    assert [r.id for r in runs.list(thread_id=thread_id, limit=2, before=ids[1]).data] == [ids[3], ids[2]]
    assert [r.id for r in runs.list(thread_id=thread_id, order="asc", limit=3).data] == ids[:3]
    assert [r.id for r in runs.list(thread_id=thread_id, limit=2)]  # iterating follows has_more == ids[::-1]
    raw = http.get(f"/v1/threads/{thread_id}/runs", params={"limit": 2, "order": "asc"}).json()
    validate("ListRunsResponse", raw)
    assert (raw["first_id"], raw["last_id"], raw["has_more"]) == (ids[0], ids[1], True)
    last = http.get(f"/v1/threads/{thread_id}/runs", params={"after": ids[0]}).json()
    assert last["data"] == [] and last["has_more"] is False
    with pytest.raises(openai.BadRequestError, match="limit"):
        runs.list(thread_id=thread_id, limit=0)


def test_run_steps_list_and_retrieve(client, http):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Find it [complete]"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id="asst_fixed")
    assert run.status == "requires_action" and run.model == "gpt-4-turbo"
    outputs = [{"tool_call_id": c.id, "output": "42"} for c in run.required_action.submit_tool_outputs.tool_calls]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs
    )
    steps = client.beta.threads.runs.steps
    listed = steps.list(run.id, thread_id=thread.id)
    assert [s.type for s in listed.data] == ["message_creation", "tool_calls"]  # newest first
    assert [s.id for s in steps.list(run.id, thread_id=thread.id, limit=1, after=listed.data[0].id).data] == [
        listed.data[1].id
    ]
    one = steps.retrieve(listed.data[1].id, thread_id=thread.id, run_id=run.id)
    assert one.step_details.tool_calls[0].function.output == "42"
    raw = http.get(f"/v1/threads/{thread.id}/runs/{run.id}/steps").json()
    validate("ListRunStepsResponse", raw)
    assert all("expired_at" in s and "expires_at" in s for s in raw["data"])
    with pytest.raises(openai.NotFoundError):
        steps.retrieve("step_missing", thread_id=thread.id, run_id=run.id)


def test_unknown_ids_are_not_found(client):
    thread_id = client.beta.threads.create().id
    with pytest.raises(openai.NotFoundError, match="No thread found"):
        client.beta.threads.runs.create(thread_id="thread_nope", assistant_id="a")
    with pytest.raises(openai.NotFoundError, match="No run found"):
        client.beta.threads.runs.retrieve("run_nope", thread_id=thread_id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.cancel("run_nope", thread_id=thread_id)


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("runs", b'{"model": "gpt-4o"}', "Missing required parameter: 'assistant_id'"),
        ("runs", b'{"assistant_id": "a",', "could not parse the JSON body"),
        ("runs", b'["assistant_id"]', "must be a JSON object"),
        ("runs", b'{"assistant_id": "a", "max_completion_tokens": 10}', "max_completion_tokens"),
    ],
)
def test_bad_bodies_get_openai_400s(client, http, path, content, message):
    thread_id = client.beta.threads.create().id
    response = http.post(
        f"/v1/threads/{thread_id}/{path}", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    validate("ErrorResponse", response.json())
    assert message in response.json()["error"]["message"]
    assert response.headers["x-request-id"].startswith("req_")


def test_sdk_surfaces_bad_request_for_missing_assistant(client):
    thread_id = client.beta.threads.create().id
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.create(thread_id=thread_id, assistant_id="", extra_body={"assistant_id": None})
    assert info.value.body["param"] == "assistant_id"


def test_missing_bearer_is_401(sim, client):
    response = httpx.post(sim.base_url + "/threads", json={})
    assert response.status_code == 401
    validate("ErrorResponse", response.json())
    no_key = openai.OpenAI(base_url=sim.base_url, api_key="sk", max_retries=0, default_headers={"Authorization": ""})
    with pytest.raises(openai.AuthenticationError):
        no_key.beta.threads.create()


def test_headers_on_every_response(client, http):
    thread_id = client.beta.threads.create(messages=[{"role": "user", "content": "Hi [complete]"}]).id
    created = client.beta.threads.runs.with_raw_response.create(thread_id=thread_id, assistant_id="a")
    assert created.headers["openai-poll-after-ms"] == "5"
    assert int(created.headers["openai-processing-ms"]) >= 0
    other = http.get(f"/v1/threads/{thread_id}/runs")
    assert created.headers["x-request-id"] != other.headers["x-request-id"]
    assert "openai-processing-ms" in other.headers


def test_routes_work_without_the_v1_prefix(http):
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": "Hi"}]}).json()
    assert http.get(f"/threads/{thread['id']}").json()["id"] == thread["id"]
    assert http.get("/nope").status_code == 404


def test_strict_assistants_404_unknown_but_know_preloaded():
    config = SimConfig(run_ms=10, strict_assistants=True, assistants=PRELOADED)
    with start_simulator(config) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
        thread_id = client.beta.threads.create().id
        with pytest.raises(openai.NotFoundError, match="No assistant found"):
            client.beta.threads.runs.create(thread_id=thread_id, assistant_id="asst_unknown")
        assert client.beta.assistants.retrieve("asst_fixed").model == "gpt-4-turbo"
        run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id="asst_fixed")
        assert run.instructions == "Fixed." and run.tools[0].function.name == "lookup"


def test_azure_openai_client_runs_create_and_run_poll(sim):
    """The SDK's AzureOpenAI client: `api-key` header, `/openai/...` paths, `api-version` query."""
    azure = openai.AzureOpenAI(
        azure_endpoint=sim.url, api_key="azure-key", api_version="2024-05-01-preview", max_retries=0
    )
    run = azure.beta.threads.create_and_run_poll(
        assistant_id="asst_azure",
        thread={"messages": [{"role": "user", "content": "Hello [complete]"}]},
        poll_interval_ms=5,
    )
    assert run.status == "completed" and run.usage.total_tokens > 0
    assert azure.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status == "completed"


@pytest.mark.parametrize("headers", [{}, {"api-key": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic x"}])
def test_requests_without_a_key_are_refused(sim, headers):
    resp = httpx.post(f"{sim.url}/openai/threads", json={}, headers=headers, timeout=10)
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "invalid_request_error"
