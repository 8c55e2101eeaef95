"""The command line as a whole: help everywhere, one-line errors with exit code 2."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from runtap.cli import cli


def _all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, prefix + (name,))


COMMANDS = list(_all_commands(cli))


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "runtap" in result.output


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for path, _ in COMMANDS:
        if len(path) == 1:
            assert path[0] in result.output


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_has_meaningful_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = dict(COMMANDS)[path]
    assert command.help and len(command.help.split()) >= 5, f"{' '.join(path)} needs a real docstring"
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"option {param.opts} of {' '.join(path)} has no help"


@pytest.mark.parametrize(
    "args",
    [
        ["proxy", "--listen", "nonsense"],
        ["proxy", "--upstream", "ftp://example.com"],
        ["proxy", "--mode", "bogus:thing"],
        ["no-such-command"],
    ],
)
def test_bad_usage_exits_2_with_one_line(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1


def test_proxy_refuses_an_address_in_use(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["proxy", "--listen", f"127.0.0.1:{port}", "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
    assert "address already in use" in result.output


def test_proxy_refuses_a_db_that_is_not_a_store(tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("this is not a database")
    result = CliRunner().invoke(cli, ["proxy", "--listen", "127.0.0.1:0", "--db", str(bogus)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
