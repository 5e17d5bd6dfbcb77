"""``spokenword serve --workers 2`` as a user runs it: one port, two processes sharing the requests, one-line
errors, and no worker left behind however the server ends. Uses the bundled model (no dataset needed)."""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from spokenword.serve import workers
from tests.conftest import tone

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not workers.balanced(), reason="several workers need Linux's SO_REUSEPORT balancing")]
psutil = pytest.importorskip("psutil")


def _clip() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate([np.zeros(1600), tone(0.4), np.zeros(1600)]), 8000, format="WAV")
    return buffer.getvalue()


CLI = [sys.executable, "-c", "import sys; from spokenword.cli import main; sys.exit(main(sys.argv[1:]))"]


def _start(*args: str) -> tuple[subprocess.Popen, int]:
    port = workers.free_port("127.0.0.1", 0)
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, port


def _wait_ready(proc: subprocess.Popen, port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not answer /health")


def _workers_of(proc: subprocess.Popen) -> list:
    """The worker processes (the resource tracker is a child too, and serves nothing)."""
    return [p for p in psutil.Process(proc.pid).children() if "resource_tracker" not in " ".join(p.cmdline())]


def _post(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # a fresh connection each time
    connection.request("POST", "/predict", body=body, headers={"Content-Type": "audio/wav"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


@contextlib.contextmanager
def _server(*args: str, command: list[str] | None = None, port: int | None = None, ready: bool = True):
    """``(proc, port)`` of a server started with ``args`` (or ``command`` on ``port``), ready unless told not to
    wait; killed at the end of the block if it still runs."""
    if command is None:
        proc, port = _start(*args)
    else:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if ready:
            _wait_ready(proc, port)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()


def _gone(processes: list, timeout: float = 20.0) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return not alive


def test_two_workers_share_the_port_and_stop_with_the_server():
    with _server() as (proc, port):
        pool = _workers_of(proc)
        assert len(pool) == 2
        before = [sum(p.cpu_times()[:2]) for p in pool]
        body = _clip()
        assert all(_post(port, body) == 200 for _ in range(40))
        spent = [sum(p.cpu_times()[:2]) - b for p, b in zip(pool, before)]
        assert min(spent) > 0.02, f"one worker answered nothing: CPU seconds spent {spent}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert _gone(pool), "a worker outlived the server"
        out = proc.stdout.read()
        assert "in 2 worker processes" in out and "the bundled model" in out
        assert "Traceback" not in proc.stderr.read()


def test_workers_stop_when_the_server_is_killed():
    with _server() as (proc, _):
        pool = _workers_of(proc)
        proc.kill()  # no chance to stop them itself
        assert _gone(pool), "a worker kept serving after the server was killed"


def test_a_dead_worker_stops_the_server_with_a_one_line_error():
    with _server() as (proc, _):
        pool = _workers_of(proc)
        os.kill(pool[0].pid, signal.SIGKILL)
        assert proc.wait(30) == 2
        assert _gone(pool)
        err = proc.stderr.read()
        assert "stopped (exit code -9); the server stopped with it" in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["no-such-model.onnx"], "no-such-model.onnx"),
    (["--teach", "taught"], "--teach serves one process"),
])
def test_errors_are_one_line(tmp_path, args, message):
    with _server(*args, ready=False) as (proc, _):
        assert proc.wait(120) == 2
        err = proc.stderr.read()
        assert message in err and "Traceback" not in err


def test_a_port_in_use_is_an_error():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run([*CLI, "serve", "--port", str(port), "--workers", "2"],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_a_script_without_a_main_guard_can_serve_with_workers(tmp_path):
    """Workers are forked, not spawned: a spawned worker would run the caller's script again (and serve again)."""
    port = workers.free_port("127.0.0.1", 0)
    script = tmp_path / "serve_it.py"
    script.write_text(f"from spokenword.serve import serve\nserve(port={port}, workers=2, live=False, log_level='warning')\n")
    with _server(command=[sys.executable, str(script)], port=port) as (proc, _):
        assert len(_workers_of(proc)) == 2
        assert _post(port, _clip()) == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "in 2 worker processes" in proc.stdout.read()
        assert "Traceback" not in proc.stderr.read()
