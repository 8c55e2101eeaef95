"""The demo workload's assistants, with fixed ids.

Every `runtap simulate` knows them (as the target of a replay already knows a recording's
assistants), so a recording of `runtap demo` replays against a fresh simulator unchanged.
"""

from __future__ import annotations

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}

TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_local_time",
        "description": "Get the local time in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

ASSISTANTS = [
    {
        "id": "asst_runtapWeather0001",
        "model": "gpt-4o",
        "name": "weather",
        "instructions": "You are a weather bot. Use the tools.",
        "tools": [WEATHER_TOOL, TIME_TOOL],
    },
    {
        "id": "asst_runtapWriter00001",
        "model": "gpt-4o-mini",
        "name": "writer",
        "instructions": "You write short answers.",
        "tools": [],
    },
]


def with_demo_assistants(assistants: list[dict]) -> list[dict]:
    """The demo's assistants plus `assistants`; an entry of `assistants` wins on the same id."""
    given = {a["id"] for a in assistants}
    return [a for a in ASSISTANTS if a["id"] not in given] + list(assistants)
