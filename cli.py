"""runtap's command line: a thin click layer over the library packages.

Commands parse options, call one library function and render its result. Library errors
(`runtap.errors.RuntapError`) become a one-line message and exit code 2; a replay that finds a
regression exits 1.
"""

from __future__ import annotations

import click

from runtap.errors import RuntapError
from runtap.store.version import tool_version

DEFAULT_DB = "runtap.duckdb"


class BadInput(click.ClickException):
    """A user-facing error: one line on stderr, exit code 2."""

    exit_code = 2


class RuntapGroup(click.Group):
    """A click group that turns library errors into `BadInput` instead of tracebacks."""

    def invoke(self, ctx: click.Context):
        """Run the command; a `RuntapError` becomes a one-line message and exit code 2."""
        try:
            return super().invoke(ctx)
        except RuntapError as exc:
            raise BadInput(str(exc)) from None


def db_option(func):
    """The shared `--db PATH` option: the DuckDB store file."""
    return click.option(
        "--db",
        "db",
        default=DEFAULT_DB,
        show_default=True,
        type=click.Path(dir_okay=False),
        help="DuckDB store file.",
    )(func)


def stores_option(func):
    """The shared `--db` option of commands that read: repeatable, globs, export directories."""
    return click.option(
        "--db",
        "dbs",
        multiple=True,
        default=(DEFAULT_DB,),
        show_default=True,
        metavar="PATH",
        help="Store file, glob, or `runtap export` directory; repeat to read several stores as one.",
    )(func)


def listen_option(default: str):
    """The shared `--listen HOST:PORT` option, with a per-command default."""

    def decorate(func):
        return click.option(
            "--listen",
            default=default,
            show_default=True,
            callback=_parse_listen,
            help="Address to listen on (HOST:PORT).",
        )(func)

    return decorate


def _parse_listen(ctx, param, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return (host.strip("[]") or "127.0.0.1", int(port))


@click.group(cls=RuntapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(tool_version(), prog_name="runtap")
def cli():
    """runtap: record, report on and replay OpenAI Assistants runs traffic.

    Start `runtap proxy`, point your client at it with
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1, then use `runtap report` and `runtap replay`.
    """


# --- commands (one section each; edit only your own section) ---------------------------------


# --- proxy ------------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--upstream",
    default="https://api.openai.com",
    show_default=True,
    help="Server to forward to in reverse mode.",
)
@listen_option("127.0.0.1:8080")
@db_option
@click.option(
    "--mode",
    default="reverse",
    show_default=True,
    help="`reverse` (to --upstream), `regular` (explicit HTTP(S) proxy with mitmproxy's CA), "
    "or any mitmproxy mode spec.",
)
@click.option(
    "--redact-header",
    "redact",
    multiple=True,
    metavar="NAME",
    help="Extra header to redact before recording (repeatable). Authorization, api-key, "
    "OpenAI-Organization, OpenAI-Project and cookies are always redacted.",
)
@click.option("--verbose", is_flag=True, help="Log every flow and mitmproxy's info messages.")
@click.option(
    "--fsync",
    is_flag=True,
    help="Also fsync the journal (batched) before each response is handed over, so a power loss "
    "loses nothing either (default: safe against the process dying).",
)
@click.option(
    "--otlp",
    metavar="URL",
    help="Also send each run's OpenTelemetry spans (as `runtap export --otlp`) to this OTLP/HTTP "
    "receiver, e.g. http://127.0.0.1:4318, once the run reaches a terminal status; runs still "
    "open are sent at shutdown. A receiver that is down costs one warning, never recording.",
)
def proxy(upstream, listen, db, mode, redact, verbose, fsync, otlp):
    """Record Assistants runs traffic into a DuckDB store.

    Point clients at it with OPENAI_BASE_URL=http://127.0.0.1:8080/v1. Runs endpoints
    (and thread/message creation, for replay) are recorded; everything else passes through
    untouched. Every exchange is in a journal beside the store (DB.journal/) before its client
    has the response; what a crash left there is applied on the next start. Stop with Ctrl-C or
    SIGTERM: everything seen is in the store first.

    With --otlp the recorder process (not the proxy) sends the spans from the store: the same
    spans and ids as `runtap export --otlp`, without message content; see the README's Traces
    section.
    """
    from runtap.addon.proxy import run_proxy

    host, port = listen
    run_proxy(
        upstream=upstream,
        host=host,
        port=port,
        db=db,
        mode=mode,
        redact=redact,
        verbose=verbose,
        fsync=fsync,
        otlp=otlp,
    )


# --- recover ----------------------------------------------------------------------------------
@cli.command()
@db_option
def recover(db):
    """Apply what the journal beside a store holds and the store does not (after a crash).

    `runtap proxy` does this itself when it starts; this is for a store you want to read
    without starting the proxy again. Safe to run twice: nothing is applied twice.
    """
    from runtap.addon.recorder_process import recover_journal

    result = recover_journal(db, log_level="WARNING")
    if result is None:
        click.echo(f"nothing to recover: no journal beside {db}")
    else:
        click.echo(f"recovered {result.recovered} exchanges from {db}.journal into {db}")


# --- demo -------------------------------------------------------------------------------------
@cli.command()
@db_option
@click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Simulator seed (same seed, same outcomes; `runtap simulate` defaults to 0 too, "
    "so the demo replays against it).",
)
def demo(db, seed):
    """Record a demo workload: simulator + proxy + the official openai SDK, then summarize.

    Needs no API key and no network: everything runs on 127.0.0.1.
    """
    from rich.console import Console

    from runtap.analysis.formats import console_for, print_table
    from runtap.demo.run import run_demo

    progress = Console(stderr=True)
    result = run_demo(db, seed=seed, progress=lambda message: progress.print(f"[dim]• {message}[/]"))
    out = console_for()
    out.print(f"Recorded {result.exchanges} exchanges in {result.seconds:.1f}s (capture {result.capture_id})")
    for report in result.reports:
        print_table(out, report.sections, f"runtap report {report.name}", report.notes)
    click.echo(
        f"Store: {db}. Next: `runtap report summary --db {db}`, `runtap report html --db {db} --out report.html`"
    )


# --- replay -----------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--target", required=True, help="Server to replay against: scheme://host:port (the recorded path is kept)."
)
@stores_option
@click.option("--thread", "threads", multiple=True, help="Replay only this recorded thread (repeatable).")
@click.option("--capture", help="Replay only sessions of this capture id.")
@click.option("--since", help="Replay only sessions that started at or after this ISO date/time (UTC).")
@click.option("--concurrency", default=1, show_default=True, type=int, help="Sessions replayed in parallel.")
@click.option(
    "--speed",
    default=0.0,
    show_default=True,
    type=float,
    help="0 = as fast as possible, 1 = recorded pacing, N = N times faster than recorded.",
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=float,
    help="Seconds per request, and per wait for a run's outcome.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    help="'Name: value' sent on every request (repeatable); default Authorization from OPENAI_API_KEY.",
)
@click.option(
    "--map-id", "map_ids", multiple=True, help="OLD=NEW: an id the target knows by another name (repeatable)."
)
@click.option(
    "--token-tolerance",
    default=0.10,
    show_default=True,
    type=float,
    help="Allowed relative difference in token counts (0.1 = 10%).",
)
@click.option(
    "--max-slowdown", type=float, help="Fail a step slower than recorded by more than this factor (off by default)."
)
@click.option("--ignore", multiple=True, help="Difference path to ignore, e.g. '$.runs[*].instructions' (repeatable).")
@click.option(
    "--api",
    type=click.Choice(["runs", "responses"]),
    default="runs",
    show_default=True,
    help="runs: replay as recorded; responses: translate each session to the Responses API (a migration test).",
)
@click.option("--junit", "junit", type=click.Path(dir_okay=False), help="Also write a JUnit XML report to FILE.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Output format."
)
@click.pass_context
def replay(ctx, **params):
    """Replay recorded sessions against a server and report regressions.

    Each recorded thread is one session: threads are recreated, new ids are learned and
    rewritten, poll loops wait for the recorded outcome, streams are replayed as streams.
    With --api responses each session is translated to the Responses API (threads become
    conversations, runs responses) and compared outcome by outcome; what has no counterpart is
    listed as not comparable, and the report adds tokens and cost per model, old against new.
    Exit code 0 when every session passes, 1 on a regression, 2 when replay could not run.
    Results are also stored in the first --db store file.
    """
    from runtap.replay.main import replay_and_report
    from runtap.replay.options import ReplayOptions

    junit, fmt = params.pop("junit"), params.pop("fmt")
    ctx.exit(replay_and_report(ReplayOptions.from_command_line(**params), fmt, junit))


# --- simulate ---------------------------------------------------------------------------------
@cli.command(
    epilog="""\b
Fault specs (--fault, repeatable): KIND=VALUE[,FILTER=VALUE...]
  status=429|500|503   answer with that HTTP status and an OpenAI error body
  delay=MS             wait MS milliseconds before sending response headers
  cut=N                close a streamed response's connection after N events
  outcome=NAME         force the outcome of matching runs and responses
                       (completed|failed|incomplete|expired|slow)
  rename=OLD:NEW       generated tool calls name function NEW instead of OLD
  tokens=FACTOR        multiply matching runs' and responses' token usage by FACTOR
Filters: op=createRun|getRun|createResponse|getResponse|...  match=TEXT
(substring of path/body, or of a run's thread or a response's conversation
messages)  count=N  skip=N  retry_after=S (429 only)
Example: --fault 'status=429,op=createRun,count=1' --fault 'outcome=failed,match=Paris'

\b
Outcome hints: metadata sim_outcome=completed|failed|incomplete|expired|slow,
or [fail] [incomplete] [expire] [slow] [complete] in the last user message.
A response chooses what the equivalent run chooses (same model, instructions,
tools and user messages): the same function calls and usage; the response
after function_call_output items is the run's turn after submit_tool_outputs.
Responses cannot expire: an expired outcome fails them.

\b
Hold times (so tests know the truth): run metadata sim_hold_ms names how long
the run stays in each status, in ms, one group per turn (the first, then the
turn after submit_tool_outputs), groups separated by ';':
  sim_hold_ms="queued=150,in_progress=400;queued=0,in_progress=200"
queued and in_progress count from entering the status, whatever is streamed
meanwhile; cancelling from the cancel. requires_action lasts until the client
submits. A status a group leaves out keeps the --run-ms pacing; later turns
use the last group. GET /__sim/ground_truth gives each run's statuses and the
epoch seconds it entered each (entered_at)."""
)
@listen_option("127.0.0.1:9100")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed: same seed and requests, same outcomes, tool calls and usage.",
)
@click.option(
    "--latency",
    "latency_ms",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Extra latency (ms) before every API response.",
)
@click.option(
    "--run-ms",
    default=300,
    show_default=True,
    type=click.IntRange(0),
    help="Duration (ms) of one run turn or response (queued + in_progress).",
)
@click.option(
    "--event-gap-ms", default=5, show_default=True, type=click.IntRange(0), help="Gap (ms) between streamed events."
)
@click.option(
    "--poll-after-ms",
    default=50,
    show_default=True,
    type=click.IntRange(0),
    help="openai-poll-after-ms header on run and response objects.",
)
@click.option(
    "--expire-ms",
    default=600_000,
    show_default=True,
    type=click.IntRange(0),
    help="A run left in requires_action this long (ms) expires.",
)
@click.option("--default-model", default="gpt-4o", show_default=True, help="Model of assistants created on first use.")
@click.option(
    "--strict-assistants",
    is_flag=True,
    help="Unknown assistant ids get 404 (as the hosted API) instead of being created.",
)
@click.option(
    "--assistants",
    "assistants_file",
    type=click.Path(dir_okay=False),
    help="JSON list of assistants {id, model, instructions, tools} to preload "
    "(the demo's assistants are always preloaded, so demo recordings replay).",
)
@click.option(
    "--outcome-weights",
    default="completed=85,failed=8,incomplete=7",
    show_default=True,
    help="Weights of outcomes for runs without a hint.",
)
@click.option("--fault", "faults", multiple=True, help="Inject a fault (repeatable); syntax below.")
@click.option(
    "--ground-truth",
    "ground_truth_path",
    type=click.Path(dir_okay=False),
    help="Write what was served (JSON) to FILE on shutdown.",
)
def simulate(listen, **options):
    """Serve a deterministic OpenAI-compatible runs + Responses API until Ctrl-C.

    Assistants threads, messages and runs; responses (stream, background, previous_response_id,
    conversation), cancel, delete, input items; conversations and their items. Point the
    official SDK at it with OPENAI_BASE_URL=http://HOST:PORT/v1 (any bearer key). Ground truth
    (runs, responses, conversations, faults) is also served at GET /__sim/ground_truth.
    """
    from runtap.simulator.config import SimConfig
    from runtap.simulator.server import serve

    host, port = listen
    config = SimConfig.from_command_line(**options)
    serve(config, host, port, on_ready=lambda url: click.echo(f"runtap simulator listening on {url}", err=True))


# --- report ------------------------------------------------------------------------------------
def _instant(end_of_day: bool):
    """A click callback parsing an ISO date/datetime (`--since`, `--until`) into a UTC datetime."""

    def parse(ctx, param, value):
        from runtap.analysis import parse_instant

        try:
            return parse_instant(value, end_of_day=end_of_day) if value else None
        except RuntapError as exc:
            raise click.BadParameter(str(exc)) from None

    return parse


def report_filters(func):
    """The filters every report shares: --since/--until/--model/--assistant/--thread/--capture."""
    options = [
        click.option(
            "--since",
            callback=_instant(end_of_day=False),
            help="Only runs created (exchanges sent) at or after this ISO date/datetime; naive is UTC.",
        ),
        click.option(
            "--until",
            callback=_instant(end_of_day=True),
            help="Only before this ISO datetime; a bare date includes that whole day.",
        ),
        click.option("--model", "models", multiple=True, help="Only runs of this model (repeatable)."),
        click.option("--assistant", "assistants", multiple=True, help="Only runs of this assistant id (repeatable)."),
        click.option("--thread", "threads", multiple=True, help="Only this thread id (repeatable)."),
        click.option("--capture", "captures", multiple=True, help="Only this capture id (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _report_command(name: str, help_text: str, extra_options=()):
    """Define `runtap report NAME` with the shared options; the body is the same for every report."""
    from runtap.analysis.formats import FORMATS

    @stores_option
    @report_filters
    @click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default=FORMATS[0], show_default=True, help="Output format."
    )
    @click.option("--section", help="Section for json/csv (default: the report's first); table and markdown show all.")
    def command(dbs, fmt, section, since, until, models, assistants, threads, captures, **options):
        from runtap.analysis import Filters, run_report
        from runtap.analysis.formats import render_report

        filters = Filters(since, until, models, assistants, threads, captures)
        render_report(run_report(dbs, name, filters, **options), fmt, section, ", ".join(dbs))

    command.__doc__ = help_text
    for option in extra_options:
        command = option(command)
    return report.command(name)(command)


@cli.group()
def report():
    """Reports over the recorded runs: cost, latency, durations, status transitions, steps.

    Every report takes --db, the filters (--since/--until/--model/--assistant/--thread/--capture)
    and --format table|json|csv|markdown. Reports can run while a proxy records into the file.
    summary, latency, transitions and tokens also cover the Responses API: --api responses|all.
    """


def _api_option():
    from runtap.analysis.filters import APIS

    return click.option(
        "--api",
        type=click.Choice(APIS),
        default=APIS[0],
        show_default=True,
        help="The Assistants runs API, the Responses API, or both side by side (an `api` column).",
    )


_report_command(
    "summary",
    "Time range, exchanges, threads, runs by status and model, tokens, cost, error rates.",
    [_api_option()],
)
_report_command(
    "latency",
    "HTTP latency per operation: p50/p90/p99/max ms, time to headers/first byte, stream first event/delta.",
    [_api_option()],
)
_report_command(
    "durations",
    "Per model: p50/p90 ms in queued, in_progress, requires_action and cancelling (a run's stays summed) and "
    "end to end, each with its median uncertainty (run_status_intervals); the API's whole-second figures "
    "(api_*) only for runs nothing finer was recorded for; polls per run.",
    [click.option("--by-assistant", is_flag=True, help="Group by model and assistant.")],
)
_report_command(
    "transitions",
    "Status transitions (from -> to), how runs ended, failure/incomplete reasons, runs still open.",
    [_api_option()],
)
_report_command(
    "tokens",
    "Per model: runs, prompt/completion/total tokens, average per run, cost in USD (genai-prices); "
    "--api responses: responses, input/output/total (cached, reasoning) tokens, cost with cached input prices.",
    [_api_option()],
)
_report_command("steps", "Run steps per type and tool: count, failures, tool calls, tokens, durations.")


@report.command("timeline")
@stores_option
@click.option("--run", help="The run to draw.")
@click.option("--thread", help="Draw every run of this thread.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json", "csv", "markdown")),
    default="table",
    show_default=True,
    help="table draws the waterfall; json, csv and markdown give its bars as data.",
)
def report_timeline(dbs, run, thread, fmt):
    """A run's time on one axis: its status stays, tool calls and requests (--run ID or --thread ID)."""
    from runtap.analysis.timeline import run_timeline
    from runtap.analysis.waterfall import render_timeline

    render_timeline(run_timeline(dbs, run=run, thread=thread), fmt, ", ".join(dbs))


@report.command("html")
@stores_option
@report_filters
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True), help="HTML file to write.")
def report_html(dbs, out, since, until, models, assistants, threads, captures):
    """Write every report and its charts to one self-contained HTML file (readable offline)."""
    from runtap.analysis import Filters
    from runtap.analysis.html import write_html

    filters = Filters(since, until, models, assistants, threads, captures)
    if not write_html(dbs, out, filters):
        click.echo(f"no runs recorded in {', '.join(dbs)} yet")
        return
    click.echo(f"wrote {out}")


# --- ingest -----------------------------------------------------------------------------------
@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@db_option
@click.option(
    "--redact-header",
    "redact",
    multiple=True,
    metavar="NAME",
    help="Extra header to redact before storing (repeatable). Authorization, api-key, "
    "OpenAI-Organization, OpenAI-Project and cookies are always redacted.",
)
def ingest(files, db, redact):
    """Ingest mitmproxy flow files and HAR files into the store (the format is read from content).

    Only runs traffic (and thread/message creation, for replay) is stored; the rest is counted.
    Ingesting a file again adds nothing. A damaged file gives every flow before the damage.
    """
    from rich.console import Console

    from runtap.ingest import ingest_files
    from runtap.ingest.render import progress_bar, summary_lines

    with progress_bar(Console(stderr=True)) as progress:
        report = ingest_files(files, db, redact_extra=redact, progress=progress)
    for line in summary_lines(report):
        click.echo(line)


# --- serve ------------------------------------------------------------------------------------
@cli.command()
@db_option
@listen_option("127.0.0.1:9200")
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=float,
    help="Pacing of streamed events and of openai-poll-after-ms: 1 = as recorded, N = N times faster, 0 = no waiting.",
)
def serve(db, listen, speed):
    """Answer the Assistants runs API from a recording, so an app's tests run offline.

    Point the client at it with OPENAI_BASE_URL=http://127.0.0.1:9200/v1 (any API key).
    Requests are matched by operation and normalized body; recorded ids are handed out (fresh
    ones when a session is played again); poll loops replay their recorded statuses, then
    repeat the last one; streams keep their recorded timing. Anything not in the recording gets
    a 404 `no_recording` error naming the closest recorded request.
    """
    from runtap.serve.server import serve_forever

    host, port = listen

    def ready(url, recording):
        click.echo(
            f"runtap serve: {len(recording.sessions)} recorded sessions "
            f"({recording.exchange_count} exchanges) on {url}",
            err=True,
        )

    serve_forever(db, speed=speed, host=host, port=port, on_ready=ready)


# --- export -----------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--parquet",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Directory to write every table and view to as Parquet (new, empty, or an earlier runtap export).",
)
@click.option("--otlp", metavar="URL", help="OTLP/HTTP receiver to send traces to, e.g. http://127.0.0.1:4318.")
@click.option("--otlp-file", type=click.Path(dir_okay=False), help="File to write traces to as OTLP JSON lines.")
@click.option(
    "--include-content", is_flag=True, help="Traces: add messages and tool arguments/results (off by default)."
)
@stores_option
@report_filters
def export(out_dir, otlp, otlp_file, include_content, dbs, since, until, models, assistants, threads, captures):
    """Export the recording: Parquet files, or OpenTelemetry traces.

    --parquet DIR writes every table and derived view, partitioned by day (UTC), with a README.md
    and a runtap-export.json manifest; DuckDB, polars, Spark, Trino and runtap itself read it.

    --otlp URL / --otlp-file FILE export one trace per thread: an invoke_agent span per run, chat
    spans with token usage, execute_tool spans, a span per HTTP exchange (GenAI and OpenInference
    attributes). Takes the report filters and several --db. Receiver headers, timeout and TLS come
    from the standard OTEL_EXPORTER_OTLP_* variables.
    """
    from runtap.analysis import Filters

    if sum(x is not None for x in (out_dir, otlp, otlp_file)) != 1:
        raise BadInput("give exactly one of --parquet DIR, --otlp URL, --otlp-file FILE")
    filters = Filters(since, until, models, assistants, threads, captures)
    if out_dir is not None:
        from runtap.store.export import export_parquet

        if len(dbs) != 1 or filters != Filters() or include_content:
            raise BadInput("--parquet exports one store file whole: one --db, no filters, no --include-content")
        result = export_parquet(dbs[0], out_dir)
        for name, rows in result.rows.items():
            click.echo(f"{name:24} {rows:>10,} rows")
        click.echo(f"wrote {out_dir} in {result.seconds:.1f}s")
        return
    from runtap.otel.export import export_traces

    result = export_traces(dbs, filters, otlp=otlp, otlp_file=otlp_file, include_content=include_content)
    click.echo(result.summary())
