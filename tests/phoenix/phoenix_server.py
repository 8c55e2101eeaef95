"""A throwaway Arize Phoenix on 127.0.0.1 (from .venv-phoenix, `make phoenix-e2e`), and its API.

Offline and loopback only: telemetry and every external resource off, its SQLite database and
HOME in a temporary directory. Its OTLP gRPC receiver binds all interfaces whatever
PHOENIX_HOST says (it cannot be turned off), so it gets a free port of its own and nothing is
sent to it. Start-up takes 20-60 s on 2 shared cores (migrations, imports).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from runtap.demo.harness import ChildProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"
PROJECT = "runtap"  # runtap's resource attribute openinference.project.name
STARTUP_SECONDS = 300


@contextlib.contextmanager
def phoenix_server(workdir: Path) -> Iterator[str]:
    """Start Phoenix with its data in `workdir`; yield its base URL; stop it (the process we started)."""
    port, grpc_port = free_port(), free_port()
    settings = {
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_SQL_DATABASE_URL": f"sqlite:///{workdir}/phoenix.db",
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
        "PHOENIX_ENABLE_MCP_SERVER": "false",
        "HOME": str(workdir),
    }
    started = time.monotonic()
    # `env` sets the variables and execs phoenix: the child (and its pid) is phoenix itself.
    args = ["env", *(f"{k}={v}" for k, v in settings.items()), str(PHOENIX), "serve"]
    with ChildProcess("phoenix", args, log_path=str(workdir / "phoenix.log")) as child:
        child.wait_for_port("127.0.0.1", port, timeout=STARTUP_SECONDS)  # uvicorn binds after migrations
        base = f"http://127.0.0.1:{port}"
        assert get_json(f"{base}/readyz") == {}
        print(f"\nphoenix {version(base)} ready in {time.monotonic() - started:.1f}s at {base}")
        yield base


def get_json(url: str):
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def version(base: str) -> str:
    """Phoenix's version string."""
    with urllib.request.urlopen(f"{base}/arize_phoenix_version", timeout=30) as response:
        return response.read().decode()


def graphql(base: str, query: str, **variables) -> dict:
    """Run a GraphQL query; its `data`."""
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


def project_spans(base: str, project: str = PROJECT) -> list[dict]:
    """Every span of a project through the REST API (empty while the project does not exist)."""
    spans, cursor = [], None
    while True:
        query = urllib.parse.urlencode({"limit": 1000, **({"cursor": cursor} if cursor else {})})
        try:
            page = get_json(f"{base}/v1/projects/{project}/spans?{query}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        spans += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return spans


def wait_for_spans(base: str, count: int, timeout: float = 60.0, project: str = PROJECT) -> list[dict]:
    """Poll until Phoenix has stored `count` spans (ingestion is asynchronous to the HTTP 200)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = project_spans(base, project)
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Without this Chromium itself looks up Google hosts despite the flags above.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1600,1000",
]


def chromium() -> str | None:
    """The headless browser, if installed (Debian's `chromium`)."""
    return shutil.which("chromium")


def browse(url: str, *extra: str, budget_ms: int = 10000) -> bytes:
    """Run headless Chromium once on `url` (a virtual-time budget under ~3 s can hang: always a timeout)."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
            + [*extra, url],
            check=True,
            timeout=120,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)
