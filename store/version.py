"""runtap's own version: shown by `--version` and written to every `captures` row."""

from importlib.metadata import PackageNotFoundError, version


def tool_version() -> str:
    """The installed runtap version ("0.0.0+source" when run from a source tree without an install)."""
    try:
        return version("runtap")
    except PackageNotFoundError:
        return "0.0.0+source"
