"""`runtap proxy` sends per-flow events only to the addons with a hook, the way mitmproxy calls them.

A real mitmproxy Master and AddonManager, real hook objects and a test flow from mitmproxy's
own helpers; the dispatch under test replaces `handle_lifecycle` (addon/proxy.py).
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import exceptions, master, options
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHook
from mitmproxy.test import tflow

from runtap.addon.proxy import _dispatch_to_hooks_only


class Calls:
    """An addon that notes which hooks ran, by name."""

    def __init__(self, name: str, seen: list, *, fail: bool = False, halt: bool = False) -> None:
        self.name, self.seen, self.fail, self.halt = name, seen, fail, halt

    def request(self, flow) -> None:
        self.seen.append((self.name, "request"))
        if self.fail:
            raise ValueError("boom")
        if self.halt:
            raise exceptions.AddonHalt()

    def update(self, flows) -> None:
        self.seen.append((self.name, "update"))


class AsyncResponse:
    """An addon with an async hook (as the recorder's with --fsync)."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    async def response(self, flow) -> None:
        await asyncio.sleep(0)
        self.seen.append(("async", "response"))


class NoHooks:
    """An addon without any per-flow hook."""


def _dispatch(addons, events) -> None:
    async def main():
        m = master.Master(options.Options(), event_loop=asyncio.get_running_loop())
        for addon in addons:
            m.addons.add(addon)
        _dispatch_to_hooks_only(m.addons)
        for event in events(m):
            await m.addons.handle_lifecycle(event)

    asyncio.run(main())


def test_hooks_run_in_chain_order_each_followed_by_update():
    seen: list = []
    flow = tflow.tflow(resp=True)
    _dispatch(
        [Calls("a", seen), NoHooks(), AsyncResponse(seen), Calls("b", seen)],
        lambda m: [HttpRequestHook(flow), HttpResponseHook(flow)],
    )
    assert seen == [
        ("a", "request"),
        ("b", "request"),
        ("a", "update"),
        ("b", "update"),
        ("async", "response"),
        ("a", "update"),
        ("b", "update"),
    ]


def test_an_error_is_logged_and_the_next_addon_runs(caplog):
    seen: list = []
    with caplog.at_level(logging.ERROR):
        _dispatch([Calls("a", seen, fail=True), Calls("b", seen)], lambda m: [HttpRequestHook(tflow.tflow())])
    assert ("b", "request") in seen
    assert "Addon error: boom" in caplog.text


def test_addon_halt_stops_the_event():
    seen: list = []
    _dispatch([Calls("a", seen, halt=True), Calls("b", seen)], lambda m: [HttpRequestHook(tflow.tflow())])
    assert seen[0] == ("a", "request") and ("b", "request") not in seen


def test_an_addon_added_later_gets_the_next_events():
    seen: list = []
    flow = tflow.tflow()

    def events(m):
        yield HttpRequestHook(flow)
        m.addons.add(Calls("late", seen))
        yield HttpRequestHook(flow)

    _dispatch([Calls("a", seen)], events)
    assert seen.count(("a", "request")) == 2 and seen.count(("late", "request")) == 1
