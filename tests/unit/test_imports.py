"""The package's import structure: the torch-free modules stay torch-free (an ``.onnx`` model is
classified without importing torch), and no two modules import each other, directly or round a
loop, counting imports inside functions too."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, tone, write_wav

SRC = REPO / "src"

#: modules that inference with an ``.onnx`` export, the command line and transcription import
TORCH_FREE = [
    "spokenword.inference.base", "spokenword.inference.onnx", "spokenword.inference.load",
    "spokenword.inference.ensemble", "spokenword.frontend.settings", "spokenword.frontend.host",
    "spokenword.audio", "spokenword.cli", "spokenword.transcribe.decode", "spokenword.transcribe.segment",
    "spokenword.transcribe.speech",
    "spokenword", "spokenword.pretrained", "spokenword.inference.card",
]


def _run(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(program), *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_torch_free_modules_do_not_import_torch():
    result = _run("""
        import importlib, sys
        for name in sys.argv[1:]:
            importlib.import_module(name)
        heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "lightning", "torchmetrics"})
        print(",".join(heavy))
    """, *TORCH_FREE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing {TORCH_FREE} imported {result.stdout.strip()}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """An ONNX export of a small untrained checkpoint (``spokenword export``)."""
    import torch

    from spokenword.inference.export import export_onnx
    from tests.unit.test_checkpoint_migration import checkpoint_dict

    folder = tmp_path_factory.mktemp("export")
    torch.save(checkpoint_dict(), folder / "model.ckpt")
    return export_onnx(folder / "model.ckpt", folder / "model.onnx")


def test_classifying_with_an_onnx_export_does_not_import_torch(exported, tmp_path):
    wav = write_wav(tmp_path / "tone.wav", tone(0.6))
    result = _run("""
        import json, sys
        from spokenword.cli import main
        code = main(["classify", "--json", "--top-k", "3", *sys.argv[1:]])
        print(json.dumps({"code": code, "torch": any(m.split(".")[0] == "torch" for m in sys.modules)}))
    """, str(exported), str(wav))
    assert result.returncode == 0, result.stderr
    *answer, status = result.stdout.strip().splitlines()
    assert json.loads(status) == {"code": 0, "torch": False}
    (ranked,) = json.loads("\n".join(answer)).values()
    assert len(ranked) == 3 and ranked[0]["score"] >= ranked[1]["score"]


# -- import cycles -------------------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted((SRC / "spokenword").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules ``name`` imports anywhere in its file (top level, in functions, under
    ``TYPE_CHECKING``): ``from a import b`` is module ``a.b`` when that is a module, else ``a``; and
    importing ``a.b.c`` runs the packages ``a`` and ``a.b`` first (unless they enclose ``name``)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else base)
    edges = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            module = ".".join(parts[:i])
            encloses = name == module or name.startswith(module + ".")
            if module in modules and not encloses:
                edges.add(module)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a -> b -> ... -> a``) for each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for group in groups:  # a shortest path back to the group's first module, by breadth-first search
        members, start = set(group), group[0]
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    cycles.append(paths[node] + [start])
                    queue = []
                    break
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    queue.append(nxt)
    return cycles


def test_cycle_finder_sees_package_and_lazy_edges():
    graph = {"p": {"p.a"}, "p.a": {"q"}, "q": {"p"}, "r": {"r"}, "s": set()}
    assert sorted(_cycles(graph)) == [["p", "p.a", "q", "p"], ["r", "r"]]


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert graph["spokenword.serve"] >= {"spokenword.serve.app"}  # a package's __init__ counts
    assert "spokenword.inference.checkpoint" in graph["spokenword.inference.load"]  # so do lazy imports
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)
