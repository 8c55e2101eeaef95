"""Run mitmproxy in-process with the runtap recorder: the library behind `runtap proxy`."""

from __future__ import annotations

import asyncio
import errno
import inspect
import signal
import socket
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from mitmproxy import exceptions, flow, hooks, options
from mitmproxy.addonmanager import AddonManager, safecall, traverse
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.tools.dump import DumpMaster

from runtap.addon.recorder import Recorder
from runtap.errors import RuntapError


def mode_spec(mode: str, upstream: str) -> str:
    """Turn `--mode` into a mitmproxy mode spec: `reverse` means reverse to `upstream`."""
    if mode == "reverse":
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RuntapError(f"--upstream must be an http(s) URL, got {upstream!r}")
        spec = f"reverse:{upstream}"
    else:
        spec = mode
    try:
        ProxyMode.parse(spec)
    except ValueError as exc:
        raise RuntapError(f"invalid --mode {mode!r}: {exc}") from None
    return spec


def check_listen_address(host: str, port: int) -> None:
    """Fail early, with one line, when the listen address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise RuntapError(f"cannot listen on {host}:{port}: {reason}") from None


class _ProxyAddon(Recorder):
    """The recorder plus the ready line, as one addon.

    Also as mitmdump loads it (`-s addon/script.py`), where mitmproxy dispatches every event (8
    per exchange, with the `update`s) to every addon in its chain, hook or not, at ~0.15M
    instructions per request per addon (benchmarks/README.md).
    """

    stream_requests = True  # the addons kept here do nothing to a runs or Responses request in `request`

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line

    def running(self) -> None:
        """Start recording, then print one line so users (and scripts) know where to point.

        No line when the store could not be opened: the error is logged and mitmproxy exits."""
        super().running()
        if self.journal is not None:
            print(self.line, file=sys.stderr, flush=True)


# DumpMaster addons that nothing in `runtap proxy` can reach. mitmproxy dispatches every event of
# every exchange (about ten, each followed by an `update`) to every addon in its chain, hook or not,
# at ~0.15M instructions per request per addon (callgrind, benchmarks/README.md); the per-flow
# events skip them since `_dispatch_to_hooks_only`, the others (log lines, options) still do. `runtap proxy`
# sets only the listen address, the mode and its own options, and loads no mitmproxy config file,
# so these do nothing but cost: reading flows from a file or stdin and exiting when done, the
# console's command history, starting a browser; and every addon whose every effect needs an
# option or a command left at its default (scripts, server replay, map/modify rules, sticky auth
# and cookies, proxy and upstream auth, block lists, anticache/anticomp, saving flows or HAR,
# cut/export/comment commands). Kept: core, proxyserver, nextlayer, tlsconfig, dnsresolver,
# block (refuses non-local clients in regular mode), onboarding (mitm.it, the CA for regular
# mode), disableh2c, stripdnshttpsrecords and updatealtsvc (they act with default options),
# clientplayback (its async `done` cannot run on removal), termlog, errorcheck (a start-up error
# exits) and the dumper with --verbose.
_UNUSED_ADDONS = (
    "readfilestdin",
    "keepserving",
    "commandhistory",
    "browser",
    "scriptloader",
    "serverplayback",
    "mapremote",
    "maplocal",
    "modifybody",
    "modifyheaders",
    "stickyauth",
    "stickycookie",
    "proxyauth",
    "upstreamauth",
    "blocklist",
    "anticache",
    "anticomp",
    "save",
    "savehar",
    "cut",
    "export",
    "comment",
)


def _drop_unused_addons(master: DumpMaster) -> None:
    for name in _UNUSED_ADDONS:
        if (addon := master.addons.get(name)) is not None:
            master.addons.remove(addon)


def _dispatch_to_hooks_only(manager: AddonManager) -> None:
    """Make the per-flow events (`handle_lifecycle`) call only the addons that have the hook.

    mitmproxy walks every addon for every event, with a context manager, a coroutine and two
    generators each, hook or not: with the ~14 addons `runtap proxy` keeps, that walk is most of
    what an event costs, on the path of every request and of every stream's first event
    (benchmarks/README.md). Here the addons with a hook are listed once per event name (again
    when the chain changes); each is still called the way mitmproxy calls it: an error is
    logged and the next addon runs, `AddonHalt` stops the event, an awaitable is awaited, and
    every flow event is followed by an `update`.
    """
    listed: dict[str, list] = {}
    chain: list = []

    async def trigger(event: hooks.Hook) -> None:
        if chain != manager.chain:
            listed.clear()
            chain[:] = manager.chain
        name = event.name
        addons = listed.get(name)
        if addons is None:
            addons = listed[name] = [a for a in traverse(manager.chain) if getattr(a, name, None) is not None]
        args = event.args()
        for addon in addons:
            func = getattr(addon, name, None)  # looked up each time: an addon may swap its hook
            if not callable(func):
                continue
            try:
                with safecall():
                    result = func(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
            except exceptions.AddonHalt:
                return

    async def handle_lifecycle(event: hooks.Hook) -> None:
        await trigger(event)
        if isinstance(event.args()[0], flow.Flow):
            await trigger(hooks.UpdateHook([event.args()[0]]))

    manager.handle_lifecycle = handle_lifecycle


async def _run(
    spec: str, host: str, port: int, db: str, redact: Sequence[str], verbose: bool, fsync: bool, otlp: str | None
) -> None:
    opts = options.Options(listen_host=host, listen_port=port, mode=[spec])
    master = DumpMaster(opts, with_termlog=True, with_dumper=verbose)
    _drop_unused_addons(master)
    line = f"runtap proxy: listening on http://{host}:{port} ({spec}), recording to {db}"
    master.addons.add(_ProxyAddon(line))
    _dispatch_to_hooks_only(master.addons)
    try:
        opts.update(
            runtap_db=db,
            runtap_redact=list(redact),
            runtap_fsync=fsync,
            runtap_otlp=otlp or "",
            termlog_verbosity="info" if verbose else "warn",
            **({"flow_detail": 1} if verbose else {}),
        )
    except exceptions.OptionsError as exc:
        raise RuntapError(str(exc)) from None
    # As mitmdump does until its addons run: the recorder's `running` hook makes these drain first.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()


def run_proxy(
    *,
    upstream: str,
    host: str,
    port: int,
    db: str,
    mode: str = "reverse",
    redact: Sequence[str] = (),
    verbose: bool = False,
    fsync: bool = False,
    otlp: str | None = None,
) -> None:
    """Record runs traffic until SIGINT/SIGTERM; everything journaled is in the store on return.

    The first signal drains: no new connections, exchanges in flight finish (up to 5 s).
    `fsync`: fsync the journal (batched) before handing a response over (survives power loss).
    `otlp`: an OTLP/HTTP receiver the recorder process sends each run's spans to (otel/live.py).
    """
    spec = mode_spec(mode, upstream)
    check_listen_address(host, port)
    if otlp:
        from runtap.otel.sinks import traces_endpoint

        traces_endpoint(otlp)  # a bad URL is one line before anything starts
    asyncio.run(_run(spec, host, port, db, redact, verbose, fsync, otlp))
