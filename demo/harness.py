"""Start and stop a real `runtap proxy` process: shared by the demo, tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from store.errors import RuntapError


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts TCP connections on host:port (or fail clearly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntapError(f"proxy exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntapError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


@dataclass
class ProxyProcess:
    """A `runtap proxy` (or `mitmdump -s addon/script.py`) child process on loopback."""

    proc: subprocess.Popen
    host: str
    port: int
    db: str | None
    log_path: str | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. http://127.0.0.1:8080."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client puts in OPENAI_BASE_URL."""
        return self.url + "/v1"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the proxy, wait for it to flush and exit; return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode

    def log_text(self) -> str:
        """Everything the proxy printed so far (stdout and stderr)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_proxy(
    upstream: str,
    db: str,
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
        args = [
            os.path.join(os.path.dirname(sys.executable), "mitmdump"),
            "--mode", f"reverse:{upstream}", "--listen-host", host, "--listen-port", str(port),
            *(["-q"] if quiet else ["--set", "flow_detail=0"]),
        ]
        if db:
            script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "addon", "script.py")
            args += ["-s", script, "--set", f"runtap_db={db}"]
    else:
        args = [sys.executable, "-c", "import cli; cli.cli(prog_name=\"runtap\")", "proxy",
                "--upstream", upstream, "--listen", f"{host}:{port}", "--db", db]
    args += extra_args or []
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    handle = ProxyProcess(proc, host, port, db, log_path, log if log_path else None)
    try:
        wait_for_port(host, port, timeout, proc)
    except RuntapError:
        handle.stop(signal.SIGKILL)
        raise
    return handle
