"""match_response_route / match_recorded: the thirteen Responses and Conversations operations
under any prefix and query, never `compact` or `input_tokens` as an id, and nothing else."""

import pytest

from runtap.addon.response_routes import RESPONSE_OPERATIONS, ResponseRoute, match_response_route
from runtap.addon.routes import Route, match_recorded, match_route

R, C, ITEM = "resp_abc", "conv_123", "msg_9"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("POST", "/v1/responses", ("createResponse", None, None, None)),
        ("GET", f"/v1/responses/{R}", ("getResponse", R, None, None)),
        ("DELETE", f"/v1/responses/{R}", ("deleteResponse", R, None, None)),
        ("POST", f"/v1/responses/{R}/cancel", ("cancelResponse", R, None, None)),
        ("GET", f"/v1/responses/{R}/input_items", ("listInputItems", R, None, None)),
        ("POST", "/v1/conversations", ("createConversation", None, None, None)),
        ("GET", f"/v1/conversations/{C}", ("getConversation", None, C, None)),
        ("POST", f"/v1/conversations/{C}", ("updateConversation", None, C, None)),
        ("DELETE", f"/v1/conversations/{C}", ("deleteConversation", None, C, None)),
        ("POST", f"/v1/conversations/{C}/items", ("createConversationItems", None, C, None)),
        ("GET", f"/v1/conversations/{C}/items", ("listConversationItems", None, C, None)),
        ("GET", f"/v1/conversations/{C}/items/{ITEM}", ("getConversationItem", None, C, ITEM)),
        ("DELETE", f"/v1/conversations/{C}/items/{ITEM}", ("deleteConversationItem", None, C, ITEM)),
        # method case, full URLs, prefixes, query strings, trailing slash, beta copies
        (
            "get",
            f"https://api.openai.com/v1/responses/{R}?stream=true&starting_after=3",
            ("getResponse", R, None, None),
        ),
        (
            "POST",
            "https://x.openai.azure.com/openai/v1/responses?api-version=preview",
            ("createResponse", None, None, None),
        ),
        ("POST", "/v1/responses?beta=true", ("createResponse", None, None, None)),
        (
            "GET",
            f"/v1/responses/{R}/input_items?limit=2&order=asc&include%5B%5D=message.output_text.logprobs",
            ("listInputItems", R, None, None),
        ),
        (
            "GET",
            f"http://gw.local:8080/tenant/responses/v1/conversations/{C}/items/",
            ("listConversationItems", None, C, None),
        ),
        ("POST", "/responses/", ("createResponse", None, None, None)),
        # a gateway prefix that itself says "responses" or "conversations"
        ("GET", f"/responses/v1/responses/{R}", ("getResponse", R, None, None)),
        ("GET", f"/conversations/api/v1/conversations/{C}", ("getConversation", None, C, None)),
    ],
)
def test_responses_operations_match(method, url, expected):
    route = match_recorded(method, url)
    assert isinstance(route, ResponseRoute)
    assert (route.operation, route.response_id, route.conversation_id, route.item_id) == expected
    assert "?" not in route.path and route.path.startswith("/")
    assert match_route(method, url) is None  # the runs matcher (serve, replay) stays runs-only


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/v1/responses/compact"),  # Compactconversation
        ("POST", "/v1/responses/input_tokens"),  # Getinputtokencounts
        ("GET", "/v1/responses/compact"),
        ("DELETE", "/v1/responses/input_tokens"),
        ("POST", "/v1/responses/compact/cancel"),
        ("GET", "/v1/responses/input_tokens/input_items"),
        ("GET", "/v1/responses"),  # no list operation
        ("PUT", f"/v1/responses/{R}"),
        ("POST", f"/v1/responses/{R}"),
        ("GET", f"/v1/responses/{R}/cancel"),
        ("GET", "/v1/conversations"),
        ("PATCH", f"/v1/conversations/{C}"),
        ("POST", f"/v1/conversations/{C}/items/{ITEM}"),
        ("GET", f"/v1/conversations/{C}/items/{ITEM}/content"),
        ("GET", f"/v1/responses/{R}/input_items/{ITEM}"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/"),
        ("GET", ""),
    ],
)
def test_other_requests_do_not_match(method, url):
    assert match_recorded(method, url) is None


def test_runs_routes_still_win_and_keep_their_shape():
    route = match_recorded("GET", "/v1/threads/thread_1/runs/run_1")
    assert route == Route("getRun", "thread_1", "run_1", None, "/v1/threads/thread_1/runs/run_1")


def test_the_thirteen_operation_ids():
    assert {
        "createResponse",
        "getResponse",
        "deleteResponse",
        "cancelResponse",
        "listInputItems",
        "createConversation",
        "getConversation",
        "updateConversation",
        "deleteConversation",
        "createConversationItems",
        "listConversationItems",
        "getConversationItem",
        "deleteConversationItem",
    } == RESPONSE_OPERATIONS


def test_a_path_without_query_is_matched_directly():
    assert match_response_route("GET", f"/v1/responses/{R}") == ResponseRoute(
        "getResponse", R, None, None, f"/v1/responses/{R}"
    )
