"""SSEParser: WHATWG field rules, every line ending, any chunk split, truncation."""

import json
from pathlib import Path

import pytest

from runtap.addon.sse import SSEEvent, SSEParser, parse_sse_text

REFERENCE = Path(__file__).parent / "fixtures" / "sse-stream-example.txt"


def _pairs(events):
    return [(e.seq, e.event, e.data) for e in events]


def test_fields_comments_multiline_data_and_default_event_name():
    text = (
        ": a comment\n"
        "event: thread.run.created\n"
        'data: {"a":\n'
        "data:1}\n"
        "\n"
        "data\n"  # a field without a colon has an empty value
        "data:  two spaces keep one\n"
        "id: 7\n"
        "retry: 10\n"
        "unknown: ignored\n"
        "\n"
        "\n"  # a blank line with no data dispatches nothing
        "event: named but empty\n"
        "\n"
    )
    events = parse_sse_text(text, 5.0)
    assert _pairs(events) == [
        (0, "thread.run.created", '{"a":\n1}'),
        (1, "message", "\n two spaces keep one"),
    ]
    assert events[1].id == "7"
    assert all(e.received_at == 5.0 for e in events)


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_every_line_ending(eol):
    text = eol.join(["event: a", "data: 1", "", "event: b", "data: 2", "", ""])
    assert _pairs(parse_sse_text(text)) == [(0, "a", "1"), (1, "b", "2")]


def test_a_leading_bom_is_dropped():
    assert _pairs(parse_sse_text("\ufeffdata: x\n\n".encode())) == [(0, "message", "x")]


def test_chunks_split_inside_utf8_and_between_cr_and_lf_keep_arrival_times():
    raw = "event: é\r\ndata: 日本\r\n\r\nevent: z\r\ndata: 2\r\n\r\n".encode()
    parser = SSEParser()
    events = []
    for i in range(len(raw)):
        events += parser.feed(raw[i : i + 1], float(i))
    events += parser.close()
    assert _pairs(events) == [(0, "é", "日本"), (1, "z", "2")]
    # each event is stamped with the arrival of the chunk that completed it (its blank line)
    first_end = raw.index(b"\r\n\r\n") + 2  # the blank line's CR ends it
    assert events[0].received_at == float(first_end)
    assert events[1].received_at == float(len(raw) - 2)
    assert parser.truncated  # no done event


def test_a_lone_cr_at_a_chunk_end_is_one_line_end_not_two():
    parser = SSEParser()
    events = parser.feed("data: 1\r", 1.0) + parser.feed("\ndata: 2\r", 2.0) + parser.feed("\n\r\n", 3.0)
    assert _pairs(events) == [(0, "message", "1\n2")]


def test_close_flushes_an_unterminated_event_and_reports_truncation():
    parser = SSEParser()
    assert parser.feed(b'event: thread.run.created\ndata: {"id":"run_1"}', 1.0) == []
    assert not parser.truncated  # not closed yet
    events = parser.close()
    assert _pairs(events) == [(0, "thread.run.created", '{"id":"run_1"}')]
    assert events[0].received_at == 1.0
    assert parser.truncated


@pytest.mark.parametrize("ending", ["event: done\ndata: [DONE]\n\n", "data: [DONE]\n\n"])
def test_done_marks_a_complete_stream(ending):
    parser = SSEParser()
    parser.feed("data: {}\n\n" + ending, 1.0)
    parser.close()
    assert parser.done and not parser.truncated


def test_invalid_utf8_is_replaced_not_fatal():
    events = parse_sse_text(b"data: \xff\xfe ok\n\ndata: next\n\n")
    assert _pairs(events) == [(0, "message", "\ufffd\ufffd ok"), (1, "message", "next")]


def test_reference_stream_in_chunks_of_seven_bytes():
    raw = REFERENCE.read_bytes()
    whole = parse_sse_text(raw, 0.0)
    parser = SSEParser()
    chunked: list[SSEEvent] = []
    for i in range(0, len(raw), 7):
        chunked += parser.feed(raw[i : i + 7], 0.0)
    chunked += parser.close()
    assert chunked == whole
    names = [e.event for e in whole]
    assert len(whole) == 24 and names.count("done") == 2
    assert names[0] == "thread.run.created" and names[-2] == "thread.run.completed"
    for event in whole:
        if event.event != "done":
            assert json.loads(event.data)["id"]
