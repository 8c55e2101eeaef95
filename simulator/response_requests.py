"""Request checks for the Responses and Conversations APIs: the 400s the hosted API answers."""

from __future__ import annotations

from runtap.simulator.objects import ApiError

TOOL_CHOICES = ("none", "auto", "required")
MAX_ITEMS = 20  # items per createConversation / createConversationItems request
MAX_METADATA_KEYS = 16


def check_create_response(body: dict) -> None:
    """Reject a createResponse body the hosted API would reject (types, tool shapes, conflicts)."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    for name, kinds, what in (
        ("instructions", (str,), "a string"),
        ("tools", (list,), "an array"),
        ("stream", (bool,), "a boolean"),
        ("background", (bool,), "a boolean"),
        ("store", (bool,), "a boolean"),
        ("parallel_tool_calls", (bool,), "a boolean"),
        ("previous_response_id", (str,), "a string"),
        ("conversation", (str, dict), "a string or an object"),
        ("tool_choice", (str, dict), "a string or an object"),
        ("max_output_tokens", (int,), "an integer"),
    ):
        value = body.get(name)
        # bool is an int in Python, not in JSON: true is no integer, 1 is no boolean
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) != (bool in kinds)):
            raise ApiError(400, f"Invalid type for '{name}': expected {what}.", param=name, code="invalid_type")
    check_metadata(body.get("metadata"))
    for index, tool in enumerate(body.get("tools") or []):
        _check_tool(tool, f"tools[{index}]")
    if isinstance(body.get("tool_choice"), str) and body["tool_choice"] not in TOOL_CHOICES:
        raise ApiError(400, f"Invalid value for 'tool_choice': {body['tool_choice']!r}.", param="tool_choice")
    if body.get("previous_response_id") is not None and body.get("conversation") is not None:
        raise ApiError(
            400,
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            param="previous_response_id",
        )
    if body.get("background") and body.get("store") is False:
        raise ApiError(400, "Background mode requires store=true.", param="background")
    limit = body.get("max_output_tokens")
    if limit is not None and limit < 16:
        raise ApiError(
            400,
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {limit}.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )


def conversation_id(value: object) -> str | None:
    """The id of a createResponse `conversation` (a string id or `{"id": ...}`)."""
    if isinstance(value, dict):
        if not isinstance(value.get("id"), str):
            raise ApiError(400, "Missing required parameter: 'conversation.id'.", param="conversation.id")
        return value["id"]
    return value if isinstance(value, str) else None


def check_metadata(metadata: object) -> None:
    """Metadata is a map of at most 16 string values, or null."""
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ApiError(400, "Invalid type for 'metadata': expected a map of strings.", param="metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ApiError(400, "Invalid 'metadata': too many keys (at most 16).", param="metadata")


def check_items(items: object, param: str, required: bool) -> list:
    """A list of at most 20 input items (`required`: present, as createConversationItems needs)."""
    if items is None and not required:
        return []
    if not isinstance(items, list):
        if items is None:
            raise ApiError(
                400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
            )
        raise ApiError(400, f"Invalid type for '{param}': expected an array.", param=param)
    if len(items) > MAX_ITEMS:
        raise ApiError(400, f"Invalid '{param}': array too long (at most {MAX_ITEMS} items).", param=param)
    return items


def _check_tool(tool: object, param: str) -> None:
    if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
        raise ApiError(400, f"Missing required parameter: '{param}.type'.", param=f"{param}.type")
    if tool["type"] == "function" and not isinstance(tool.get("name"), str):
        # the Assistants shape ({"type": "function", "function": {...}}) is the usual mistake
        raise ApiError(
            400,
            f"Missing required parameter: '{param}.name'.",
            param=f"{param}.name",
            code="missing_required_parameter",
        )
