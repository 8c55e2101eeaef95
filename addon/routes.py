"""Recognise the Assistants runs endpoints (and the thread/message context calls) in a URL.

The match works on path segments after the last ``threads`` segment that fits a known shape,
so any prefix (``/v1``, Azure's ``/openai``, a gateway's own) and any query string pass.
`match_recorded` also recognises the Responses and Conversations endpoints
(`addon.response_routes`): together, every route the recorder records.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtap.addon.response_routes import ResponseRoute, match_response_route

# Shapes of the path after ``threads``: "{}" is an id. Each maps methods to operationIds.
_SHAPES: dict[tuple[str, ...], dict[str, str]] = {
    (): {"POST": "createThread"},
    ("runs",): {"POST": "createThreadAndRun"},
    ("{}", "messages"): {"POST": "createMessage"},
    ("{}", "runs"): {"GET": "listRuns", "POST": "createRun"},
    ("{}", "runs", "{}"): {"GET": "getRun", "POST": "modifyRun"},
    ("{}", "runs", "{}", "cancel"): {"POST": "cancelRun"},
    ("{}", "runs", "{}", "submit_tool_outputs"): {"POST": "submitToolOutputsToRun"},
    ("{}", "runs", "{}", "steps"): {"GET": "listRunSteps"},
    ("{}", "runs", "{}", "steps", "{}"): {"GET": "getRunStep"},
}
_MAX_TAIL = max(len(shape) for shape in _SHAPES)


@dataclass(frozen=True, slots=True)
class Route:
    """A recognised runs-API call: its operationId, the ids in its path, and the path itself."""

    operation: str
    thread_id: str | None
    run_id: str | None
    step_id: str | None
    path: str


def url_path(url_or_path: str) -> str:
    """Return the path of a full URL or of a path with a query string (no query, no fragment)."""
    path = url_or_path.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = path.partition("://")
    if sep and "/" not in scheme:
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else "/"
    return path


def _fit(tail: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """Match the segments after ``threads`` to a shape; return its methods and the ids."""
    if len(tail) > _MAX_TAIL:
        return None
    for shape, methods in _SHAPES.items():
        if len(shape) != len(tail):
            continue
        ids = []
        for want, got in zip(shape, tail):
            if want == "{}":
                ids.append(got)
            elif want != got:
                break
        else:
            return methods, ids
    return None


def match_route(method: str, url_or_path: str) -> Route | None:
    """Return the `Route` of a runs-API request, or None for any other request.

    ``/threads/runs`` is createThreadAndRun (never createRun on a thread called "runs");
    a trailing slash is tolerated; thread get/modify/delete, messages other than create,
    assistants, files and everything else give None.
    """
    return _match_runs(method, url_path(url_or_path))


def match_recorded(method: str, url_or_path: str) -> Route | ResponseRoute | None:
    """Return the route of any request the recorder records (runs or Responses/Conversations), or None."""
    path = url_path(url_or_path)
    return _match_runs(method, path) or match_response_route(method, path)


def _match_runs(method: str, path: str) -> Route | None:
    segments = [segment for segment in path.split("/") if segment]
    verb = method.upper()
    # Rightmost ``threads`` first, so a gateway prefix that contains the word is skipped.
    for i in range(len(segments) - 1, -1, -1):
        if segments[i] != "threads":
            continue
        fitted = _fit(segments[i + 1 :])
        if fitted is None:
            continue
        methods, ids = fitted
        operation = methods.get(verb)
        if operation is None:
            return None
        ids += [None] * (3 - len(ids))
        return Route(operation, ids[0], ids[1], ids[2], path)
    return None
