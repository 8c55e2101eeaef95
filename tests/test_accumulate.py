"""StepDeltas: tool-call deltas merged by index, and merged into a step's own details."""

from runtap.addon.accumulate import StepDeltas


def _delta(*calls):
    return {"step_details": {"type": "tool_calls", "tool_calls": list(calls)}}


def test_function_arguments_concatenate_and_name_is_set_once():
    deltas = StepDeltas()
    deltas.add(
        "s",
        _delta(
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "", "output": None},
            }
        ),
    )
    deltas.add("s", _delta({"index": 0, "type": "function", "function": {"arguments": '{"loc'}}))
    deltas.add("s", _delta({"index": 0, "type": "function", "function": {"name": "x", "arguments": '":1}'}}))
    assert deltas.details("s") == {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"loc":1}', "output": None},
            }
        ],
    }


def test_parallel_calls_merge_by_index_not_by_arrival():
    deltas = StepDeltas()
    deltas.add("s", _delta({"index": 1, "id": "b", "type": "function", "function": {"arguments": "B"}}))
    deltas.add("s", _delta({"index": 0, "id": "a", "type": "function", "function": {"arguments": "A"}}))
    deltas.add("s", _delta({"index": 1, "function": {"arguments": "2"}}, {"index": 0, "function": {"arguments": "1"}}))
    calls = deltas.details("s")["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [("a", "A1"), ("b", "B2")]


def test_code_interpreter_input_and_outputs():
    deltas = StepDeltas()
    deltas.add(
        "s",
        _delta(
            {"index": 0, "id": "ci", "type": "code_interpreter", "code_interpreter": {"input": "print(", "outputs": []}}
        ),
    )
    deltas.add(
        "s",
        _delta(
            {
                "index": 0,
                "type": "code_interpreter",
                "code_interpreter": {"input": "1)", "outputs": [{"index": 0, "type": "logs", "logs": "1"}]},
            }
        ),
    )
    deltas.add(
        "s",
        _delta(
            {
                "index": 0,
                "type": "code_interpreter",
                "code_interpreter": {"outputs": [{"index": 1, "type": "image", "image": {"file_id": "f"}}]},
            }
        ),
    )
    call = deltas.details("s")["tool_calls"][0]
    assert call["code_interpreter"] == {
        "input": "print(1)",
        "outputs": [{"type": "logs", "logs": "1"}, {"type": "image", "image": {"file_id": "f"}}],
    }


def test_file_search_call_keeps_its_object():
    deltas = StepDeltas()
    deltas.add("s", _delta({"index": 0, "id": "fs", "type": "file_search", "file_search": {}}))
    assert deltas.details("s")["tool_calls"] == [{"id": "fs", "type": "file_search", "file_search": {}}]


def test_merged_prefers_the_snapshot_and_fills_what_it_lacks():
    deltas = StepDeltas()
    deltas.add(
        "s",
        _delta(
            {"index": 0, "id": "a", "type": "function", "function": {"arguments": "{}"}},
            {"index": 1, "id": "b", "type": "function", "function": {"arguments": "[]"}},
        ),
    )
    empty = {"type": "tool_calls", "tool_calls": []}
    assert [c["id"] for c in deltas.merged("s", empty)["tool_calls"]] == ["a", "b"]
    own = {
        "type": "tool_calls",
        "tool_calls": [{"id": "a", "type": "function", "function": {"arguments": "{}", "output": "ok"}}],
    }
    merged = deltas.merged("s", own)["tool_calls"]
    assert merged[0] is own["tool_calls"][0] and merged[1]["id"] == "b"
    assert deltas.merged("other", own) is own  # no deltas for that step
    assert empty == {"type": "tool_calls", "tool_calls": []}  # the snapshot was not altered


def test_deltas_do_not_alias_the_parsed_events():
    deltas = StepDeltas()
    first = _delta({"index": 0, "id": "a", "function": {"arguments": "x"}})
    deltas.add("s", first)
    deltas.add("s", _delta({"index": 0, "function": {"arguments": "y"}}))
    assert first["step_details"]["tool_calls"][0]["function"]["arguments"] == "x"


def test_odd_shapes_are_kept_not_fatal():
    deltas = StepDeltas()
    deltas.add("s", "not a dict")
    deltas.add("s", {"step_details": None})
    assert deltas.details("s") is None
    deltas.add("s", _delta("not a call", {"no_index": True}, {"index": "0", "id": "q"}))
    assert deltas.details("s")["tool_calls"] == ["not a call", {"no_index": True}, {"id": "q"}]
