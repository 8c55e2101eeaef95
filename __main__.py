"""`python -m runtap` and the `runtap` console script.

The command line is imported inside `main`, so a dependency missing from the environment (a
package a new release of another one stopped bringing along, say) is one line naming it and
the fix, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line; a missing module exits 2 with one line."""
    try:
        from runtap.cli import cli

        cli(prog_name="runtap")
    except ModuleNotFoundError as exc:
        from runtap.errors import missing_module_message

        print(missing_module_message(exc), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
