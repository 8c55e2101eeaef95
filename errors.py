"""The one error type runtap's libraries raise for bad input; the CLI turns it into exit code 2."""


class RuntapError(Exception):
    """Bad input or an unusable resource, with a one-line message meant for the user."""
