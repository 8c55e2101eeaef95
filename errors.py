"""The one error type runtap's libraries raise for bad input, and the message for a broken install.

The CLI turns a `RuntapError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys


class RuntapError(Exception):
    """Bad input or an unusable resource, with a one-line message meant for the user."""


def missing_module_message(exc: ModuleNotFoundError) -> str:
    """One line for an import that failed at start-up: which module, and how to repair the environment."""
    module = exc.name or str(exc)
    return (
        f"runtap cannot start: Python module {module!r} is not installed in {sys.prefix} ({exc}). "
        "Reinstall runtap with its dependencies: `make venv` in a checkout, or `pip install --force-reinstall runtap`."
    )
