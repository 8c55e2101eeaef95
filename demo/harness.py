"""Start and stop real runtap processes (proxy, simulator, plain mitmdump) on loopback.

Shared by the demo, the tests and the benchmarks. Every child writes its output to a log file,
so when one dies early or exits with an error, the message carries its own last lines rather
than just an exit code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from runtap.errors import RuntapError

# The runtap command line, run by this interpreter (no console script needed on PATH).
RUNTAP = [sys.executable, "-m", "runtap"]
_TAIL_LINES = 12


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, alive=lambda: True) -> bool:
    """Wait until something accepts TCP connections on host:port; False if `alive()` turns False or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def last_lines(text: str, count: int = _TAIL_LINES) -> list[str]:
    """The last `count` non-blank lines of a child's output."""
    return [line for line in text.splitlines() if line.strip()][-count:]


class ChildProcess:
    """A child process whose stdout and stderr go to a log file; stop it, read what it said."""

    def __init__(self, name: str, args: list[str], *, log_path: str | None = None) -> None:
        self.name = name
        self._own_log = log_path is None
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix=f"runtap-{name.replace(' ', '-')}-", suffix=".log")
            os.close(fd)
        self.log_path = log_path
        self._text: str | None = None  # the log, kept once the process is stopped
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_for_port(self, host: str, port: int, timeout: float = 30.0) -> None:
        """Block until the child accepts connections on host:port; RuntapError with its last lines if it dies."""
        if wait_for_port(host, port, timeout, alive=lambda: self.proc.poll() is None):
            return
        if self.proc.poll() is not None:
            raise RuntapError(self.failure("exited early"))
        self.stop(signal.SIGKILL)
        raise RuntapError(self.failure(f"was not listening on {host}:{port} after {timeout:.0f}s"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the child, wait for it to exit (kill it after `timeout`); return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._text is None:
            self._text = self._read_log()
            if self._own_log:
                os.unlink(self.log_path)
        return self.proc.returncode

    def log_text(self) -> str:
        """Everything the child printed so far (stdout and stderr)."""
        return self._text if self._text is not None else self._read_log()

    def failure(self, what: str) -> str:
        """A message for a child that failed: what happened, its exit code, its own last lines."""
        code = self.proc.poll()
        lines = last_lines(self.log_text())
        head = f"{self.name} {what}" + (f" (exit code {code})" if code is not None else "")
        if not lines:
            return f"{head}; it printed nothing"
        return f"{head}; its last lines:\n" + "\n".join(f"  | {line}" for line in lines)

    def _read_log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ProxyProcess(ChildProcess):
    """A `runtap proxy` (or `mitmdump -s addon/script.py`) child process on loopback."""

    def __init__(self, name: str, args: list[str], host: str, port: int, db: str | None, log_path: str | None):
        super().__init__(name, args, log_path=log_path)
        self.host, self.port, self.db = host, port, db

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. http://127.0.0.1:8080."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client puts in OPENAI_BASE_URL."""
        return self.url + "/v1"


def start_proxy(
    upstream: str,
    db: str | None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    extra_args: list[str] | None = None,
    log_path: str | None = None,
    plain_mitmdump: bool = False,
    quiet: bool = True,
    timeout: float = 30.0,
) -> ProxyProcess:
    """Start `runtap proxy` (or plain `mitmdump` with the addon script) and wait until it listens.

    `quiet=False` keeps mitmdump's warnings and info lines (its `-q` hides them).
    """
    port = port or free_port(host)
    if plain_mitmdump:
        name = "mitmdump"
        args = [
            os.path.join(os.path.dirname(sys.executable), "mitmdump"),
            "--mode",
            f"reverse:{upstream}",
            "--listen-host",
            host,
            "--listen-port",
            str(port),
            *(["-q"] if quiet else ["--set", "flow_detail=0"]),
        ]
        if db:
            script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "addon", "script.py")
            args += ["-s", script, "--set", f"runtap_db={db}"]
    else:
        name = "runtap proxy"
        args = [*RUNTAP, "proxy", "--upstream", upstream, "--listen", f"{host}:{port}", "--db", db]
    proxy = ProxyProcess(name, args + (extra_args or []), host, port, db, log_path)
    proxy.wait_for_port(host, port, timeout)
    return proxy


class SimulatorProcess(ChildProcess):
    """`runtap simulate` in its own process on a free loopback port (extra CLI args allowed)."""

    def __init__(self, *args: str, port: int | None = None, log_path: str | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            "runtap simulate", [*RUNTAP, "simulate", "--listen", f"127.0.0.1:{self.port}", *args], log_path=log_path
        )
        self.wait_for_port("127.0.0.1", self.port)

    def ground_truth(self) -> dict:
        """What the simulator served so far."""
        return httpx.get(self.url + "/__sim/ground_truth", timeout=30).json()
