"""match_route: every runs operation under any prefix and query, and nothing else."""

import pytest

from runtap.addon.routes import Route, match_route, url_path

T, R, S = "thread_abc", "run_123", "step_9"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("POST", f"/v1/threads/{T}/runs", ("createRun", T, None, None)),
        ("POST", "/v1/threads/runs", ("createThreadAndRun", None, None, None)),
        ("GET", f"/v1/threads/{T}/runs", ("listRuns", T, None, None)),
        ("GET", f"/v1/threads/{T}/runs/{R}", ("getRun", T, R, None)),
        ("POST", f"/v1/threads/{T}/runs/{R}", ("modifyRun", T, R, None)),
        ("POST", f"/v1/threads/{T}/runs/{R}/cancel", ("cancelRun", T, R, None)),
        ("POST", f"/v1/threads/{T}/runs/{R}/submit_tool_outputs", ("submitToolOutputsToRun", T, R, None)),
        ("GET", f"/v1/threads/{T}/runs/{R}/steps", ("listRunSteps", T, R, None)),
        ("GET", f"/v1/threads/{T}/runs/{R}/steps/{S}", ("getRunStep", T, R, S)),
        ("POST", "/v1/threads", ("createThread", None, None, None)),
        ("POST", f"/v1/threads/{T}/messages", ("createMessage", T, None, None)),
        # method case, full URLs, prefixes, query strings, trailing slash
        ("get", f"https://api.openai.com/v1/threads/{T}/runs/{R}", ("getRun", T, R, None)),
        (
            "POST",
            f"https://x.openai.azure.com/openai/threads/{T}/runs?api-version=2024-05-01-preview",
            ("createRun", T, None, None),
        ),
        (
            "GET",
            f"http://gw.local:8080/tenant/42/openai/v1/threads/{T}/runs/{R}/steps/{S}"
            "?include%5B%5D=step_details.tool_calls%5B%2A%5D.file_search.results%5B%2A%5D.content",
            ("getRunStep", T, R, S),
        ),
        (
            "GET",
            f"/v1/threads/{T}/runs/{R}/steps?include[]=step_details.tool_calls[*].file_search.results[*].content",
            ("listRunSteps", T, R, None),
        ),
        ("GET", f"/v1/threads/{T}/runs/{R}?", ("getRun", T, R, None)),
        ("GET", f"/v1/threads/{T}/runs/{R}/", ("getRun", T, R, None)),
        ("POST", "/threads/runs/", ("createThreadAndRun", None, None, None)),
        ("GET", f"/threads/{T}/runs?limit=20&order=desc#frag", ("listRuns", T, None, None)),
        # a gateway prefix that itself says "threads"
        ("GET", f"/threads/v1/threads/{T}/runs", ("listRuns", T, None, None)),
    ],
)
def test_runs_operations_match(method, url, expected):
    route = match_route(method, url)
    assert route is not None
    assert (route.operation, route.thread_id, route.run_id, route.step_id) == expected
    assert "?" not in route.path and route.path.startswith("/")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/threads/runs"),  # createThreadAndRun is POST only; never listRuns on "runs"
        ("GET", f"/v1/threads/{T}"),
        ("POST", f"/v1/threads/{T}"),
        ("DELETE", f"/v1/threads/{T}"),
        ("GET", f"/v1/threads/{T}/messages"),
        ("GET", f"/v1/threads/{T}/messages/msg_1"),
        ("POST", "/v1/assistants"),
        ("GET", "/v1/files"),
        ("POST", "/v1/chat/completions"),
        ("DELETE", f"/v1/threads/{T}/runs/{R}"),
        ("GET", f"/v1/threads/{T}/runs/{R}/cancel"),
        ("POST", f"/v1/threads/{T}/runs/{R}/steps"),
        ("GET", f"/v1/threads/{T}/runs/{R}/steps/{S}/extra"),
        ("GET", f"/v1/threadsX/{T}/runs"),
        ("GET", f"/v1/assistants?next=/threads/{T}/runs"),  # the query is not the path
        ("GET", ""),
        ("GET", "/"),
    ],
)
def test_other_requests_do_not_match(method, url):
    assert match_route(method, url) is None


def test_threads_runs_is_create_thread_and_run_not_a_thread_called_runs():
    route = match_route("POST", "/v1/threads/runs")
    assert route == Route("createThreadAndRun", None, None, None, "/v1/threads/runs")


def test_path_keeps_prefix_and_drops_query():
    route = match_route("GET", f"https://h/openai/threads/{T}/runs?api-version=1")
    assert route.path == f"/openai/threads/{T}/runs"
    assert url_path("https://host") == "/"
    assert url_path("/a/b?x=http://c/d") == "/a/b"
