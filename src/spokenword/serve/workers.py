"""Several server processes on one port: ``spokenword serve --workers N``.

One process cannot keep several cores busy: its event loop and its batches' Python code take turns on one
interpreter lock. :func:`run` starts ``N`` worker
processes instead, each with its own model and micro-batcher, each listening on the same port with
``SO_REUSEPORT``, so that the kernel spreads the connections over them. (One listening socket shared by the
workers does not spread them: the first worker to wake accepts a burst of connections, and keep-alive clients
stay where they landed.) The kernel balances ``SO_REUSEPORT`` sockets on Linux only; elsewhere, and when the
page teaches the model (which swaps one process's model), there is one process. Measured in
docs/serving.md ("Worker processes").

The parent loads nothing: it checks the port is free, forks the workers, waits until every one has loaded its
model (a failure is raised as that worker's one-line error), lets them listen together, and then watches them.
Stopping the parent (Ctrl-C, SIGTERM) stops the workers; a worker that dies stops the server.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from spokenword.inference.base import ModelError

logger = logging.getLogger("spokenword.serve")

#: the most workers ``workers=None`` chooses (one per usable CPU up to this; each holds its own model)
MAX_AUTO_WORKERS = 4
#: seconds a worker gets to finish its requests once asked to stop, before it is killed
STOP_SECONDS = 10.0


class WorkersError(RuntimeError):
    """A worker setting that cannot be served, or a worker that failed (one line)."""


def setup_logging() -> None:
    """Give the package logger (the server's and the loader's lines) a ``spokenword serve:`` handler, unless it
    has one: in the server's process and in each worker."""
    package = logging.getLogger("spokenword")
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("spokenword serve: %(message)s"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)
        package.propagate = False


def usable_cpus() -> int:
    """CPUs this process may use: its affinity (where the platform has one), and no more than a container's CPU
    quota allows (:func:`quota_cpus`)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    quota = quota_cpus()
    return max(1, min(count, quota)) if quota else count


def quota_cpus(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPUs a cgroup CPU quota allows (a container's ``--cpus``; v2 ``cpu.max``, else v1
    ``cpu/cpu.cfs_quota_us``), rounded up; ``None`` without a quota. Read by hand: neither the standard
    library nor psutil reports it, and a container with two CPUs of a large host would otherwise get a
    worker (and a model's memory) per host CPU."""
    try:
        limit, period = (root / "cpu.max").read_text().split()[:2]
        if limit != "max":
            return max(1, math.ceil(int(limit) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def balanced() -> bool:
    """Whether the kernel spreads the connections of one port over several ``SO_REUSEPORT`` sockets."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def worker_count(workers: int | None, *, teaching: bool = False) -> int:
    """The number of server processes: ``workers`` as asked, or (``None``) one per usable CPU up to
    :data:`MAX_AUTO_WORKERS`, and one where several cannot be served (teaching, no balancing kernel).

    Raises :class:`WorkersError` for an asked number that cannot be served."""
    if workers is not None:
        if workers < 1:
            raise WorkersError(f"--workers must be at least 1, not {workers}")
        if workers > 1 and teaching:
            raise WorkersError("--teach serves one process (a taught model replaces that process's model): "
                               "leave out --workers or use --workers 1")
        if workers > 1 and not balanced():
            raise WorkersError(f"--workers {workers} needs Linux (the kernel spreads the connections of one port over "
                               "the workers there); use --workers 1")
        return workers
    if teaching or not balanced():
        return 1
    return max(1, min(usable_cpus(), MAX_AUTO_WORKERS))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str, port: int) -> int:
    """``port`` (a free one when 0) after checking, with an ordinary bind, that nothing listens there: workers
    bound with ``SO_REUSEPORT`` would otherwise share the port with another such server without a word."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
        return probe.getsockname()[1]
    except OSError as err:
        raise WorkersError(f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --port or --host") from None
    finally:
        probe.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that other workers can bind too (``SO_REUSEPORT``)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(index: int, host: str, port: int, build: Callable[..., tuple], options: dict, server: dict, messages, go) -> None:
    """One worker process: load the model and build the app (``build(**options)``: ``(app, summary)``), report,
    wait for the others, then serve."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: SIGTERM ends a loading worker
    setup_logging()
    try:
        app, summary = build(**options)
    except ModelError as err:
        messages.put(("error", index, "model", str(err)))
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 - the parent reports it in one line; the worker stops
        messages.put(("error", index, type(err).__name__, str(err)))
        sys.exit(1)
    messages.put(("ready", index, summary))
    _stop_with_parent()
    go.wait()
    import uvicorn

    sock = listening_socket(host, port)
    config = uvicorn.Config(app, access_log=False, **server)
    uvicorn.Server(config).run(sockets=[sock])


def _stop_with_parent() -> None:
    """Stop this worker (SIGTERM to itself: uvicorn finishes its requests) when the parent is gone, however it
    ended (even killed), so that no worker keeps serving the port on its own."""
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="spokenword-parent-watch", daemon=True).start()


class _Stop(Exception):
    """SIGTERM reached the parent."""


def _raise_stop(signum, frame) -> None:
    raise _Stop()


def _await_ready(processes: list, messages, count: int) -> str:
    """Wait until every worker has loaded its model; its summary (worker 0's), or the first failure raised."""
    ready: dict[int, str] = {}
    while len(ready) < count:
        try:
            message = messages.get(timeout=0.5)
        except queue.Empty:
            dead = [(i, p.exitcode) for i, p in enumerate(processes) if p.exitcode is not None and i not in ready]
            if dead:
                i, code = dead[0]
                raise WorkersError(f"worker {i} exited with code {code} while loading the model")
            continue
        if message[0] == "error":
            _, index, kind, text = message
            if kind == "model":
                raise ModelError(text)
            raise WorkersError(f"worker {index} could not start ({kind}: {text})")
        ready[message[1]] = message[2]
    return ready[0]


def _stop(processes: list) -> None:
    """Ask every live worker to stop (SIGTERM: uvicorn finishes its requests), then kill what is left."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def run(count: int, host: str, port: int, build: Callable[..., tuple], options: dict, server: dict) -> None:
    """Serve with ``count`` worker processes until interrupted (see the module docstring).

    Args:
        build: the function that loads the model and builds the app in each worker,
            ``build(**options) -> (app, summary)``: :func:`spokenword.serve.app.served_app`.
        options: its keyword arguments.
        server: uvicorn.Config's keyword arguments other than the app, host and port.

    Raises :class:`~spokenword.inference.base.ModelError` (a worker could not load the model) or
    :class:`WorkersError` (the port is taken, a worker failed), each with a one-line message.
    """
    port = free_port(host, port)
    # fork (workers run on Linux only): spawn would import the caller's main module again in each worker, so a
    # script calling serve() without an `if __name__ == "__main__":` guard would start servers without end
    context = multiprocessing.get_context("fork")
    messages, go = context.Queue(), context.Event()
    processes = [context.Process(target=_worker, name=f"spokenword-serve-{i}",
                                 args=(i, host, port, build, options, server, messages, go)) for i in range(count)]
    import threading

    main = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = signal.signal(signal.SIGTERM, _raise_stop) if main else None
    try:
        for process in processes:
            process.start()
        summary = _await_ready(processes, messages, count)
        go.set()
        print(f"spokenword serve: {summary} on http://{host}:{port}/ in {count} worker processes  (API docs: /docs)", flush=True)
        ended = multiprocessing.connection.wait([p.sentinel for p in processes])
        index = next(i for i, p in enumerate(processes) if p.sentinel in ended)
        processes[index].join(STOP_SECONDS)  # its sentinel can fire a moment before its exit code is known
        raise WorkersError(f"worker {index} stopped (exit code {processes[index].exitcode}); the server stopped with it")
    except _Stop:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        _stop(processes)
