"""The harness every benchmark shares: its flags, the machine, configs and the one results writer.

Every benchmark runs as ``python -m benchmarks.NAME [SUBCOMMAND] ...`` from the repository root and
spells the options they share the same way (:func:`flags`):

* ``--data.root DIR``: the data root holding ``fsdd/recordings`` (default ``$SPOKENWORD_DATA``);
* ``--threads N``: torch threads of the measuring process;
* ``--out DIR``: the results root (default ``benchmarks/results``);
* ``--name NAME``: the result's name (default: the config's or model's stem, and for timings the
  machine, :func:`machine_slug`).

A result is one JSON file, ``OUT/<benchmark>/<name>.json``, written atomically (a temporary file in
the same folder, then :func:`os.replace`), with the keys ``benchmark``, ``arm`` (the subcommand, when
the script has several), ``name``, ``protocol`` (the split and how it was measured), ``command`` (the
command that reproduces it), ``machine`` (:func:`machine`), ``recipe`` (what was measured: config,
model, options) and ``figures``. ``python -m benchmarks.report`` builds ``docs/results.md`` from them.

Configs are read one way: :func:`build` parses a training config with the CLI's own parser
(``SpokenWordCLI``, LightningCLI with ``run=False``) and returns the instantiated data module and model,
exactly as ``spokenword fit`` would build them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the default results root (``--out``)
RESULTS = REPO / "benchmarks" / "results"


def flags(threads: int | None = 1, data: bool = True, measures_here: bool = True) -> argparse.ArgumentParser:
    """The shared options, as a parent parser (``argparse.ArgumentParser(parents=[flags()])``).

    ``threads``: the ``--threads`` default (``None``: torch's own); ``data``: whether the benchmark
    reads FSDD (``--data.root``); ``measures_here``: whether the timed work runs in this process
    (``--threads``; not so for a server in a child process)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("shared benchmark options")
    if data:
        group.add_argument("--data.root", dest="data_root", default=None, metavar="DIR",
                           help="data root holding fsdd/recordings (default $SPOKENWORD_DATA)")
    if measures_here:
        group.add_argument("--threads", type=int, default=threads,
                           help="torch threads of the measuring process (default %(default)s; None: torch's own)")
    group.add_argument("--out", type=Path, default=RESULTS, metavar="DIR",
                       help="results root: the result is written to OUT/<benchmark>/<name>.json (default benchmarks/results)")
    group.add_argument("--name", default=None, help="the result's name (default: from the config or model, and the machine for timings)")
    return parent


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when given (``None``: leave torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def command(module: str, argv: list[str] | None) -> str:
    """The shell command that reruns ``python -m benchmarks.<module>`` with ``argv`` (default ``sys.argv[1:]``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", "-m", f"benchmarks.{module}", *map(str, argv)])


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def process_tree(pid: int) -> list:
    """The psutil processes of ``pid`` and its descendants (a server and its worker processes)."""
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu_seconds(processes: list) -> float:
    """CPU seconds (user + system) of ``processes`` so far (those that have ended are left out)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except Exception:  # noqa: BLE001 - psutil.NoSuchProcess: it ended
            continue
        total += times.user + times.system
    return total


def tree_rss_mb(processes: list) -> float:
    """Resident memory of ``processes`` together (MB)."""
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except Exception:  # noqa: BLE001 - psutil.NoSuchProcess: it ended
            continue
    return total / 2**20


def machine() -> dict:
    """What a figure was measured on: CPU model, the instruction set torch's kernels use
    (``capability``), CPUs (``cpus``: visible, ``usable``: this process's affinity), torch threads,
    the load average now, and the versions of Python, torch and spokenword with the git commit."""
    import platform

    import torch

    from spokenword import __version__
    from spokenword.training.provenance import cpu, git_commit

    info = cpu()
    return {
        "cpu": info["model"],
        "capability": info["capability"],
        "cpus": os.cpu_count(),
        "usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": info["threads"],
        "load": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "spokenword": __version__,
        "git": git_commit(REPO),
    }


def describe(m: dict) -> str:
    """One line: ``CPU MODEL (CAPABILITY), N CPUs (U usable), T thread(s), load a b c; spokenword V, commit C``."""
    git = m.get("git") or {}
    commit = (git.get("commit") or "")[:10] + (" (modified)" if git.get("dirty") else "") if git else "unknown"
    return (f"{m['cpu']} ({m['capability']}), {m['cpus']} CPUs ({m['usable']} usable), {m['threads']} torch thread(s), "
            f"load {' '.join(f'{x:.2f}' for x in m['load'])}; spokenword {m['spokenword']}, torch {m['torch']}, "
            f"commit {commit}")


def machine_slug(m: dict | None = None) -> str:
    """A file-name part naming the machine: the CPU model without trade marks, and the CPU count
    (``"Intel(R) Xeon(R) Processor"``, 2 CPUs -> ``"intel-xeon-2cpu"``)."""
    m = m or machine()
    text = re.sub(r"\((R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|@.*$", " ", m["cpu"])
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words[:4] + [f"{m['usable']}cpu"])


def relative(path: str | os.PathLike) -> str:
    """``path`` relative to the repository root when it is inside it (as results record paths), else as given."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def model_name(path: str | os.PathLike) -> str:
    """The name of the run a checkpoint or export belongs to: ``runs/fsdd_cnn/version_0/checkpoints/x.ckpt``
    -> ``fsdd_cnn``; a run made by the accuracy benchmark (``.../accuracy/NAME/runs/official-seed0/...``)
    -> ``NAME``; else the file's stem."""
    path = Path(path)
    parts = path.parts
    for i in range(len(parts) - 1, 0, -1):
        if re.fullmatch(r"version_\d+", parts[i]):
            run = parts[i - 1]
            if re.fullmatch(r"(official-seed\d+|loso-.+)", run) and i >= 3 and parts[i - 2] == "runs":
                return parts[i - 3]
            return run
    return path.stem


def build(config: str | os.PathLike, *options: str, seed: int | None = None):
    """``spokenword fit``'s objects for ``config`` plus command-line ``options`` (``"--data.root=DIR"``, ...),
    parsed and instantiated by the CLI's own parser without running anything: the returned
    ``SpokenWordCLI`` holds ``.datamodule``, ``.model`` and ``.trainer``. ``seed`` is the default of
    ``seed_everything`` (the config's own value wins)."""
    from spokenword.data.datamodule import AudioDataModule
    from spokenword.training.cli import SpokenWordCLI, trainer_defaults
    from spokenword.training.task import SpokenWordTask

    extra = {} if seed is None else {"seed_everything_default": seed}
    return SpokenWordCLI(SpokenWordTask, AudioDataModule, run=False, trainer_defaults=trainer_defaults(),
                         args=["--config", str(config), *options], auto_configure_optimizers=False, **extra)


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (temporary file beside it, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def result_path(out: Path, benchmark: str, name: str) -> Path:
    """``OUT/<benchmark>/<name>.json``."""
    return Path(out) / benchmark / f"{name}.json"


def write_result(out: Path, benchmark: str, name: str, *, protocol, command: str, recipe: dict, figures: dict,
                 arm: str | None = None, m: dict | None = None, **extra) -> Path:
    """Write one result file (see the module docstring) and return its path; ``m`` is the machine
    (default: this one, now). ``extra`` keys are stored after ``figures``."""
    record = {"benchmark": benchmark, **({"arm": arm} if arm else {}), "name": name, "protocol": protocol,
              "command": command, "machine": m or machine(), "recipe": recipe, "figures": figures, **extra}
    path = write_json(result_path(out, benchmark, name), record)
    print(f"result: {path}", file=sys.stderr)
    return path


def read_results(out: Path = RESULTS) -> list[dict]:
    """Every result file under ``out`` (``<benchmark>/<name>.json``, not the units or runs below them),
    in path order, each with ``path`` added (relative to ``out``)."""
    found = []
    for path in sorted(Path(out).glob("*/*.json")):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and "benchmark" in record:
            found.append({**record, "path": path.relative_to(out).as_posix()})
    return found
