"""An official-SDK client whose every Responses/Conversations response body is schema-checked.

An httpx response hook reads each body the simulator sends (JSON, or every event of an SSE
stream) and validates it against the spec's schema for that operation (`tests.spec_schemas`).
A failure raises inside the SDK call, so a test cannot pass on an invalid body. `checked`
counts the validations per schema, so tests can show what was covered.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import httpx
import openai

from tests.spec_schemas import validate, validate_sse

_ID = r"[^/]+"
# (method, path suffix after any prefix) -> the spec's 200-body schema (None: the spec has none)
SCHEMAS = [
    ("POST", rf"/responses/{_ID}/cancel", "Response"),
    ("GET", rf"/responses/{_ID}/input_items", "ResponseItemList"),
    ("GET", rf"/responses/{_ID}", "Response"),
    ("DELETE", rf"/responses/{_ID}", None),
    ("POST", r"/responses", "Response"),
    ("GET", rf"/conversations/{_ID}/items/{_ID}", "ConversationItem"),
    ("DELETE", rf"/conversations/{_ID}/items/{_ID}", "ConversationResource"),
    ("POST", rf"/conversations/{_ID}/items", "ConversationItemList"),
    ("GET", rf"/conversations/{_ID}/items", "ConversationItemList"),
    ("DELETE", rf"/conversations/{_ID}", "DeletedConversationResource"),
    ("GET", rf"/conversations/{_ID}", "ConversationResource"),
    ("POST", rf"/conversations/{_ID}", "ConversationResource"),
    ("POST", r"/conversations", "ConversationResource"),
]


def schema_for(method: str, path: str) -> str | None:
    """The schema of a successful body of `method path`; KeyError for other routes."""
    for want, suffix, schema in SCHEMAS:
        if method == want and re.search(suffix + "$", path):
            return schema
    raise KeyError(f"no Responses/Conversations route for {method} {path}")


def check_body(method: str, path: str, status: int, content_type: str, text: str, checked: Counter) -> None:
    """Validate one response body as the spec describes it for this route and status."""
    if status >= 400:
        validate("ErrorResponse", json.loads(text))
        checked["ErrorResponse"] += 1
        return
    if content_type.startswith("text/event-stream"):
        checked["ResponseStreamEvent"] += len(validate_sse("ResponseStreamEvent", text))
        return
    body = json.loads(text)
    schema = schema_for(method, path)
    if schema is None:  # deleteResponse: the spec gives only an example
        assert body == {"id": path.rsplit("/", 1)[1], "object": "response", "deleted": True}
        checked["deleteResponse"] += 1
        return
    if schema.endswith("List") and not body["data"]:
        # The spec types first_id/last_id as strings and gives no value for an empty page; the
        # simulator sends null there, as the hosted API's lists always did.
        assert body["first_id"] is None and body["last_id"] is None
        body = {**body, "first_id": "", "last_id": ""}
    validate(schema, body)
    checked[schema] += 1


def validating_client(base_url: str, checked: Counter, **kwargs: object) -> openai.OpenAI:
    """An `openai.OpenAI` for `base_url` whose Responses/Conversations bodies are all validated."""

    def hook(response: httpx.Response) -> None:
        if not re.search(r"/(responses|conversations)(/|$)", response.request.url.path):
            return
        response.read()  # buffers a stream too; the SDK then reads it from the buffer
        check_body(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.headers.get("content-type", ""),
            response.text,
            checked,
        )

    http_client = httpx.Client(event_hooks={"response": [hook]}, timeout=30)
    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, http_client=http_client, **kwargs)
