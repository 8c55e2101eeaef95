"""Recognise the Responses and Conversations endpoints in a URL, under any path prefix.

Like `addon.routes` for the runs API, the match works on the path segments after the last
``responses`` (or ``conversations``) segment that fits a known shape, so any prefix (``/v1``,
Azure's ``/openai``, a gateway's own) and any query string (``include[]``, ``?beta=true``) pass.
The words the API uses below ``/responses`` for other operations (``compact``, ``input_tokens``)
are never taken for a response id.
"""

from __future__ import annotations

from dataclasses import dataclass

# Shapes of the path after the keyword: "{}" is an id. Each maps methods to operationIds.
_RESPONSES: dict[tuple[str, ...], dict[str, str]] = {
    (): {"POST": "createResponse"},
    ("{}",): {"GET": "getResponse", "DELETE": "deleteResponse"},
    ("{}", "cancel"): {"POST": "cancelResponse"},
    ("{}", "input_items"): {"GET": "listInputItems"},
}
_CONVERSATIONS: dict[tuple[str, ...], dict[str, str]] = {
    (): {"POST": "createConversation"},
    ("{}",): {"GET": "getConversation", "POST": "updateConversation", "DELETE": "deleteConversation"},
    ("{}", "items"): {"GET": "listConversationItems", "POST": "createConversationItems"},
    ("{}", "items", "{}"): {"GET": "getConversationItem", "DELETE": "deleteConversationItem"},
}
_SHAPES = {"responses": _RESPONSES, "conversations": _CONVERSATIONS}
# Other operations under /responses (Compactconversation, Getinputtokencounts): never an id.
_NOT_IDS = frozenset({"compact", "input_tokens"})
_MAX_TAIL = 3

RESPONSE_OPERATIONS = frozenset(
    op for shapes in _SHAPES.values() for methods in shapes.values() for op in methods.values()
)


@dataclass(frozen=True, slots=True)
class ResponseRoute:
    """A recognised Responses or Conversations call: its operationId, the ids in its path, the path."""

    operation: str
    response_id: str | None
    conversation_id: str | None
    item_id: str | None
    path: str


def _fit(shapes: dict[tuple[str, ...], dict[str, str]], tail: list[str]) -> tuple[dict[str, str], list[str]] | None:
    for shape, methods in shapes.items():
        if len(shape) != len(tail):
            continue
        ids = []
        for want, got in zip(shape, tail):
            if want == "{}":
                if got in _NOT_IDS:
                    break
                ids.append(got)
            elif want != got:
                break
        else:
            return methods, ids
    return None


def match_response_route(method: str, path: str) -> ResponseRoute | None:
    """Return the `ResponseRoute` of a Responses/Conversations request `path` (no query), or None.

    A trailing slash is tolerated; ``/responses/compact``, ``/responses/input_tokens`` and
    anything else outside the thirteen operations give None.
    """
    if "responses" not in path and "conversations" not in path:
        return None  # most other traffic: no need to split the path
    segments = [segment for segment in path.split("/") if segment]
    verb = method.upper()
    for i in range(len(segments) - 1, max(-1, len(segments) - 2 - _MAX_TAIL), -1):
        shapes = _SHAPES.get(segments[i])
        if shapes is None:
            continue
        fitted = _fit(shapes, segments[i + 1 :])
        if fitted is None:
            continue
        methods, ids = fitted
        operation = methods.get(verb)
        if operation is None:
            return None
        if segments[i] == "responses":
            return ResponseRoute(operation, ids[0] if ids else None, None, None, path)
        ids += [None] * (2 - len(ids))
        return ResponseRoute(operation, None, ids[0], ids[1], path)
    return None
