"""Read mitmproxy flows out of capture files: mitmproxy flow files and HAR, told apart by content.

Flow files (tnetstring, from `mitmdump -w`) are read one flow at a time as mitmproxy's
`FlowReader` does, but stop short of building the flow object (`FlowState`). HAR files are JSON
with a `log` key; their entries are streamed with ijson (FlowReader would load the whole file
and give up on it at the first bad entry) and each becomes a flow
through mitmproxy's own `request_to_flow`. HAR has no flow ids, so an entry's id is derived from
its content: the same entry read twice gets the same id, which is what keeps ingest idempotent.

A damaged file yields every flow before the damage; `FlowSource.stopped` then says where and why.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import ijson
from mitmproxy import flow as mflow
from mitmproxy.io import compat, tnetstring
from mitmproxy.io.har import request_to_flow

from runtap.errors import RuntapError

FLOWS, HAR = "mitmproxy flows", "HAR"
_BOM = b"\xef\xbb\xbf"
_TNETSTRING_START = re.compile(rb"\d{1,12}:")
# Namespace of the ids given to HAR entries (uuid5 of the entry's canonical JSON).
_HAR_ID_NAMESPACE = uuid.UUID("5d0c5d8e-7b8e-4a52-9a3e-2f1f6b1f0a11")


def detect_format(path: str) -> str:
    """Return FLOWS or HAR from the file's content (never its name); RuntapError for anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise RuntapError(f"cannot read {path}: {exc.strerror or exc}") from None
    head = head.removeprefix(_BOM).lstrip()
    if not head:
        raise RuntapError(f"{path} is empty: no flows to ingest")
    if _TNETSTRING_START.match(head):
        return FLOWS
    if head.startswith(b"{") and _is_har(path):
        return HAR
    raise RuntapError(f"{path} is neither a mitmproxy flow file nor a HAR file")


def _is_har(path: str) -> bool:
    """True when the top-level JSON object has a `log` key (read as a stream, stops there)."""
    with open(path, "rb") as fh:
        _skip_bom(fh)
        try:
            for prefix, event, value in ijson.parse(fh):
                if prefix == "" and event == "map_key" and value == "log":
                    return True
                if prefix == "" and event == "end_map":
                    return False
        except ijson.JSONError:
            return False
    return False


def _skip_bom(fh) -> None:
    if fh.read(3) != _BOM:
        fh.seek(0)


@dataclass(frozen=True)
class FlowState:
    """One flow of a flow file as mitmproxy's (migrated) state dict: cheap to route and to pickle.

    `to_flow()` makes it the `Flow` that `mitmproxy.io.FlowReader` would have given.
    """

    state: dict

    @property
    def id(self) -> str:
        """The flow id (the store's exchange id)."""
        return self.state["id"]

    @property
    def is_http(self) -> bool:
        """True for an HTTP flow (flow files may also hold TCP, UDP, DNS flows)."""
        return self.state.get("type") == "http"

    @property
    def method(self) -> str:
        """The request method, decoded as mitmproxy does."""
        return self.state["request"]["method"].decode("utf-8", "surrogateescape")

    @property
    def path(self) -> str:
        """The request path with its query, decoded as mitmproxy does."""
        return self.state["request"]["path"].decode("utf-8", "surrogateescape")

    @property
    def upstream(self) -> str:
        """scheme://host:port of the request."""
        request = self.state["request"]
        return f"{request['scheme'].decode()}://{request['host']}:{request['port']}"

    def to_flow(self) -> mflow.Flow:
        """Build the flow object, exactly as FlowReader does."""
        return mflow.Flow.from_state(self.state)


class FlowSource:
    """The flows of one capture file, read lazily; counts and the damage are kept as it goes."""

    def __init__(self, path: str, fmt: str | None = None) -> None:
        self.path = path
        self.format = fmt or detect_format(path)
        self.flows_read = 0  # flows (HAR entries) read successfully
        self.bad_entries = 0  # HAR entries that could not become a flow (the rest still read)
        self.first_bad_entry: str | None = None  # which one, and why
        self.offset = 0  # bytes consumed so far (approximate for HAR: ijson reads ahead)
        self.stopped: str | None = None  # where and why reading stopped before the end

    def flows(self) -> Iterator[FlowState | mflow.Flow]:
        """Yield every readable flow (a `FlowState` from flow files, a Flow from HAR); stop (and
        set `stopped`) at damage instead of raising."""
        with open(self.path, "rb") as fh:
            yield from (self._flow_file(fh) if self.format == FLOWS else self._har_file(fh))

    def _flow_file(self, fh) -> Iterator[FlowState]:
        # FlowReader.stream() without its last step (Flow.from_state, half the cost of a read),
        # which ingest does only for the flows it stores, in the worker process.
        size = os.fstat(fh.fileno()).st_size
        while True:
            start = fh.tell()
            try:
                loaded = tnetstring.load(fh)
                if not isinstance(loaded, dict):
                    raise ValueError(f"not a flow: {type(loaded).__name__}")
                state = compat.migrate_flow(loaded)
            except Exception as exc:  # ValueError/TypeError/IndexError from a damaged file
                if str(exc) == "not a tnetstring: empty file":
                    return  # the end of the file
                truncated = fh.tell() >= size
                self._stop(
                    f"flow {self.flows_read + 1} at byte {start}",
                    "the file ends inside this flow (truncated)" if truncated else exc,
                )
                return
            self.flows_read += 1
            self.offset = fh.tell()
            yield FlowState(state)

    def _har_file(self, fh) -> Iterator[mflow.Flow]:
        _skip_bom(fh)
        entries = ijson.items(fh, "log.entries.item", use_float=True)
        number = 0
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                return
            except ijson.JSONError as exc:
                self._stop(f"HAR entry {number + 1} (near byte {fh.tell()})", exc)
                return
            number += 1
            self.offset = fh.tell()
            try:
                item = har_entry_to_flow(entry)
            except Exception as exc:  # a malformed entry costs that entry only
                self.bad_entries += 1
                self.first_bad_entry = self.first_bad_entry or f"HAR entry {number}: {type(exc).__name__}: {exc}"
                continue
            self.flows_read += 1
            yield item

    def _stop(self, where: str, why: BaseException | str) -> None:
        if isinstance(why, BaseException):
            lines = str(why).strip().splitlines()
            why = f"{type(why).__name__}: {lines[0]}" if lines else type(why).__name__
        self.stopped = f"{where}: {why}"


def har_entry_to_flow(entry: dict) -> mflow.Flow:
    """Turn one HAR entry into an HTTPFlow with mitmproxy's reader, plus what it leaves out.

    Additions: a stable id from the entry's content; response headers timed at end - `receive`
    (mitmproxy puts them at the request start); an entry without a response (status 0) is a flow
    with no response and its `_error` as the flow's error, as mitmproxy would have recorded it.
    """
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
    item = request_to_flow(entry)
    item.id = str(uuid.uuid5(_HAR_ID_NAMESPACE, canonical))
    response = item.response
    if response.status_code == 0:
        item.error = mflow.Error(
            str(entry["response"].get("_error") or "no response"), timestamp=item.request.timestamp_end
        )
        item.response = None
        return item
    receive = (entry.get("timings") or {}).get("receive")
    if isinstance(receive, (int, float)) and receive >= 0 and response.timestamp_end is not None:
        response.timestamp_start = max(item.request.timestamp_start, response.timestamp_end - receive / 1000.0)
    return item
