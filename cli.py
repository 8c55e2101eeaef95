"""runtap's command line: a thin click layer over the library packages.

Commands parse options, call one library function and render its result. Library errors
(`store.errors.RuntapError`) become a one-line message and exit code 2; a replay that finds a
regression exits 1.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

from store.errors import RuntapError

DEFAULT_DB = "runtap.duckdb"


def _version() -> str:
    try:
        return version("runtap")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+source"


class BadInput(click.ClickException):
    """A user-facing error: one line on stderr, exit code 2."""

    exit_code = 2


class RuntapGroup(click.Group):
    """A click group that turns library errors into `BadInput` instead of tracebacks."""

    def invoke(self, ctx: click.Context):
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
@click.version_option(_version(), prog_name="runtap")
def cli():
    """runtap: record, report on and replay OpenAI Assistants runs traffic.

    Start `runtap proxy`, point your client at it with
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1, then use `runtap report` and `runtap replay`.
    """


# --- commands (one section each; edit only your own section) ---------------------------------
