"""Hand-written JSON Schemas for the spec's RunObject, RunStepObject and list responses.

Written from reading the OpenAPI spec (required fields, types, status enums), not copied from
it. Extra properties are allowed, as the hosted service sent fields the spec does not list.
List `first_id`/`last_id` also accept null: the service returned null for an empty page.
"""

from __future__ import annotations

import jsonschema

_TIMESTAMP = {"type": "integer"}
_NULLABLE_TIMESTAMP = {"type": ["integer", "null"]}
_METADATA = {"type": ["object", "null"], "additionalProperties": {"type": "string"}}
_USAGE = {
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
            "properties": {
                "prompt_tokens": {"type": "integer", "minimum": 0},
                "completion_tokens": {"type": "integer", "minimum": 0},
                "total_tokens": {"type": "integer", "minimum": 0},
            },
        },
    ]
}
_FUNCTION_CALL = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
        },
    },
}

RUN = {
    "type": "object",
    "required": [
        "id",
        "object",
        "created_at",
        "thread_id",
        "assistant_id",
        "status",
        "required_action",
        "last_error",
        "expires_at",
        "started_at",
        "cancelled_at",
        "failed_at",
        "completed_at",
        "model",
        "instructions",
        "tools",
        "metadata",
        "usage",
        "incomplete_details",
        "max_prompt_tokens",
        "max_completion_tokens",
        "truncation_strategy",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    ],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "thread.run"},
        "created_at": _TIMESTAMP,
        "thread_id": {"type": "string"},
        "assistant_id": {"type": "string"},
        "status": {
            "enum": [
                "queued",
                "in_progress",
                "requires_action",
                "cancelling",
                "cancelled",
                "failed",
                "completed",
                "incomplete",
                "expired",
            ]
        },
        "required_action": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["type", "submit_tool_outputs"],
                    "properties": {
                        "type": {"const": "submit_tool_outputs"},
                        "submit_tool_outputs": {
                            "type": "object",
                            "required": ["tool_calls"],
                            "properties": {"tool_calls": {"type": "array", "items": _FUNCTION_CALL}},
                        },
                    },
                },
            ]
        },
        "last_error": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"enum": ["server_error", "rate_limit_exceeded", "invalid_prompt"]},
                        "message": {"type": "string"},
                    },
                },
            ]
        },
        "expires_at": _NULLABLE_TIMESTAMP,
        "started_at": _NULLABLE_TIMESTAMP,
        "cancelled_at": _NULLABLE_TIMESTAMP,
        "failed_at": _NULLABLE_TIMESTAMP,
        "completed_at": _NULLABLE_TIMESTAMP,
        "incomplete_details": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"reason": {"enum": ["max_completion_tokens", "max_prompt_tokens"]}},
                },
            ]
        },
        "model": {"type": "string"},
        "instructions": {"type": "string"},
        "tools": {"type": "array", "maxItems": 20, "items": {"type": "object", "required": ["type"]}},
        "metadata": _METADATA,
        "usage": _USAGE,
        "temperature": {"type": ["number", "null"]},
        "top_p": {"type": ["number", "null"]},
        "max_prompt_tokens": {"type": ["integer", "null"], "minimum": 256},
        "max_completion_tokens": {"type": ["integer", "null"], "minimum": 256},
        "truncation_strategy": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": ["auto", "last_messages"]},
                        "last_messages": {"type": ["integer", "null"], "minimum": 1},
                    },
                },
            ]
        },
        "tool_choice": {"oneOf": [{"type": "null"}, {"enum": ["none", "auto", "required"]}, {"type": "object"}]},
        "parallel_tool_calls": {"type": "boolean"},
        "response_format": {"oneOf": [{"type": "null"}, {"const": "auto"}, {"type": "object"}]},
    },
}

STEP = {
    "type": "object",
    "required": [
        "id",
        "object",
        "created_at",
        "assistant_id",
        "thread_id",
        "run_id",
        "type",
        "status",
        "step_details",
        "last_error",
        "expired_at",
        "cancelled_at",
        "failed_at",
        "completed_at",
        "metadata",
        "usage",
    ],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "thread.run.step"},
        "created_at": _TIMESTAMP,
        "assistant_id": {"type": "string"},
        "thread_id": {"type": "string"},
        "run_id": {"type": "string"},
        "type": {"enum": ["message_creation", "tool_calls"]},
        "status": {"enum": ["in_progress", "cancelled", "failed", "completed", "expired"]},
        "step_details": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["type", "message_creation"],
                    "properties": {
                        "type": {"const": "message_creation"},
                        "message_creation": {
                            "type": "object",
                            "required": ["message_id"],
                            "properties": {"message_id": {"type": "string"}},
                        },
                    },
                },
                {
                    "type": "object",
                    "required": ["type", "tool_calls"],
                    "properties": {
                        "type": {"const": "tool_calls"},
                        "tool_calls": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "type", "function"],
                                "properties": {
                                    "type": {"const": "function"},
                                    "function": {
                                        "type": "object",
                                        "required": ["name", "arguments", "output"],
                                        "properties": {
                                            "name": {"type": "string"},
                                            "arguments": {"type": "string"},
                                            "output": {"type": ["string", "null"]},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            ]
        },
        "last_error": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"enum": ["server_error", "rate_limit_exceeded"]}},
                },
            ]
        },
        "expired_at": _NULLABLE_TIMESTAMP,
        "cancelled_at": _NULLABLE_TIMESTAMP,
        "failed_at": _NULLABLE_TIMESTAMP,
        "completed_at": _NULLABLE_TIMESTAMP,
        "metadata": _METADATA,
        "usage": _USAGE,
    },
}


def _list_of(item: dict) -> dict:
    return {
        "type": "object",
        "required": ["object", "data", "first_id", "last_id", "has_more"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": item},
            "first_id": {"type": ["string", "null"]},
            "last_id": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        },
    }


LIST_RUNS = _list_of(RUN)
LIST_STEPS = _list_of(STEP)

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

SCHEMAS = {"run": RUN, "step": STEP, "list_runs": LIST_RUNS, "list_steps": LIST_STEPS, "error": ERROR}


def validate(kind: str, instance: object) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` fits the named schema."""
    jsonschema.validate(instance, SCHEMAS[kind])
