"""Helpers for tests that start a real `mlflow server` subprocess on the loopback interface."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(server: subprocess.Popen, url: str, *, timeout: float, output: Callable[[], str]) -> None:
    """Poll ``url``/health until it answers 200; fail with the server's ``output()`` if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, output()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"mlflow server did not answer /health within {timeout:.0f} s"
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there 15 s later."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
