"""Screenshot a runtap trace in Phoenix's UI with headless Chromium (a tool for people, not a test).

    .venv/bin/python -m tests.phoenix.screenshot [--db STORE] [--out-dir DIR]   (from the repository root)

Without --db, records the demo workload through a real proxy first. Starts a throwaway Phoenix
(.venv-phoenix, `make phoenix-e2e` creates it), exports with `runtap export --otlp`, and writes
two PNGs of the busiest thread's trace: `trace.png` (the span tree, the root selected) and
`agent.png` (the first invoke_agent span selected: its attributes); and, when the store holds
Responses traffic, two of the busiest response chain or conversation: `response_trace.png` and
`response_llm.png` (its first `chat` span selected). Needs Debian's `chromium`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from runtap.demo.run import run_demo
from runtap.otel import ids
from tests.phoenix.phoenix_server import PHOENIX, PROJECT, browse, chromium, get_json, phoenix_server, wait_for_spans

RESPONSE_ROOTS = ("conversation", "response_chain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="store to export (default: record the demo workload)")
    parser.add_argument("--out-dir", default=".", help="where to write trace.png and agent.png")
    args = parser.parse_args()
    if not PHOENIX.exists() or chromium() is None:
        print("needs .venv-phoenix (make phoenix-e2e) and chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="runtap-screenshot-"))
    db = args.db or str(work / "demo.duckdb")
    if not args.db:
        run_demo(db, progress=print)
    with phoenix_server(work) as base:
        exported = subprocess.run(
            [sys.executable, "-m", "runtap", "export", "--otlp", base, "--db", db],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        print(exported.strip())
        spans = wait_for_spans(base, int(exported.split(" spans", 1)[0].rsplit(" ", 1)[1]))
        per_trace: dict[str, list[dict]] = {}
        for span in spans:
            per_trace.setdefault(span["context"]["trace_id"], []).append(span)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (project,) = [p["id"] for p in get_json(f"{base}/v1/projects")["data"] if p["name"] == PROJECT]
        responses = {t: s for t, s in per_trace.items() if any(x["name"] in RESPONSE_ROOTS for x in s)}
        if responses:
            trace_id = max(responses, key=lambda t: (sum(s["span_kind"] == "TOOL" for s in responses[t]), t))
            trace = responses[trace_id]
            llm = min((s for s in trace if s["span_kind"] == "LLM"), key=lambda s: s["start_time"])
            url = f"{base}/projects/{project}/traces/{trace_id}"
            browse(url, f"--screenshot={out / 'response_trace.png'}")
            browse(f"{url}?selectedSpanNodeId={llm['id']}", f"--screenshot={out / 'response_llm.png'}")
            print(f"wrote response_trace.png and response_llm.png in {out} (trace {trace_id}, {len(trace)} spans)")
        threads = {t: s for t, s in per_trace.items() if t not in responses}
        if not threads:
            return 0
        trace_id, trace = max(threads.items(), key=lambda t: sum(s["span_kind"] == "TOOL" for s in t[1]))
        agent = min((s for s in trace if s["span_kind"] == "AGENT"), key=lambda s: s["start_time"])
        assert agent["context"]["span_id"] == f"{ids.span_id('run', agent['attributes']['runtap.run.id']):016x}"
        url = f"{base}/projects/{project}/traces/{trace_id}"  # the redirect page drops a query string
        browse(url, f"--screenshot={out / 'trace.png'}")
        browse(f"{url}?selectedSpanNodeId={agent['id']}", f"--screenshot={out / 'agent.png'}")
        print(f"wrote {out / 'trace.png'} and {out / 'agent.png'} (trace {trace_id}, {len(trace)} spans)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
