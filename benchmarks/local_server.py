"""A ``spokenword serve`` in a child process on 127.0.0.1, for the serving benchmarks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

#: the child's program: ``serve(model, port, **options)``; ``lookahead_ms`` (when given) sets the
#: segmenter lookahead of the live endpoint
_PROGRAM = (
    "import json, sys\n"
    "from dataclasses import replace\n"
    "from spokenword.serve import serve\n"
    "from spokenword.serve.live import LiveSettings, live_vad\n"
    "options = json.loads(sys.argv[3])\n"
    "lookahead = options.pop('lookahead_ms', None)\n"
    "if lookahead is not None:\n"
    "    options['live'] = LiveSettings(vad=replace(live_vad(), lookahead_ms=lookahead))\n"
    "serve(sys.argv[1], port=int(sys.argv[2]), log_level='warning', **options)\n"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, options: dict, timeout_s: float = 180.0) -> subprocess.Popen:
    """Start ``serve(model, port=port, **options)`` and return once ``/health`` answers 200.

    Exits with the server's own error output when it dies first, or after ``timeout_s`` seconds.
    """
    proc = subprocess.Popen([sys.executable, "-c", _PROGRAM, model, str(port), json.dumps(options)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not answer /health within {timeout_s:.0f} s")
