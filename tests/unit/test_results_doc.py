"""docs/results.md and the README's results block are exactly what ``python -m benchmarks.report`` makes of the
committed results (benchmarks/results/), so no figure in them is typed in by hand or drifts from its result
file; and the generator shows a missing figure as "–", never a number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "run `python -m benchmarks.report` (after adding or changing results) and commit what it writes"


def test_the_results_page_is_what_the_results_give():
    doc = REPO / "docs" / "results.md"
    assert doc.is_file(), f"docs/results.md is missing: {REGENERATE}"
    assert doc.read_text() == report.render_doc(report.Results(REPO / "benchmarks" / "results")), REGENERATE


def test_the_readme_block_is_what_the_results_give():
    text = (REPO / "README.md").read_text()
    assert report.START in text and report.END in text, f"README.md lacks the lines {report.START} and {report.END}"
    expected = report.fill_readme(text, report.render_readme_block(report.Results(REPO / "benchmarks" / "results")))
    assert text == expected, REGENERATE


def _accuracy(root: Path, name: str, figures: dict, **extra) -> None:
    record = {"benchmark": "accuracy", "name": name, "protocol": {}, "command": {}, "machine": MACHINE,
              "recipe": {"config": f"configs/{name}.yaml", "hash": "h"}, "figures": figures, **extra}
    path = root / "accuracy" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


MACHINE = {"cpu": "CPU A", "capability": "AVX2", "cpus": 2, "usable": 2, "threads": 1, "load": [0.5, 0.5, 0.5],
           "python": "3.11.0", "torch": "2.0", "spokenword": "0.1.0", "git": {"commit": "0" * 40, "dirty": False}}
NOISE = {"seeds": [0], "count": 300, "inference_ms_per_clip": 2.5,
         "accuracy": {"clean": 0.99, **{f"{k}_{db}dB": 0.9 for k in ("white", "babble") for db in (20, 10, 5)}}}


def test_missing_figures_are_dashes_and_present_ones_come_from_their_files(tmp_path):
    empty = report.Results(tmp_path / "none")
    block = report.render_readme_block(empty)
    assert "| default: ensemble of the two below | – | – | – | – |" in block and "not measured yet" in block
    assert "python -m benchmarks.accuracy loso configs/fsdd_cnn_newvoices.yaml" in report.render_doc(empty)

    root = tmp_path / "results"
    loso = {"per_speaker": {s: 0.9 for s in ("george", "jackson", "lucas", "nicolas", "theo")} | {"yweweler": 0.8},
            "mean": 0.8833, "worst": ["yweweler", 0.8], "folds": 6, "seeds": [0]}
    _accuracy(root, "fsdd_cnn_newvoices", {"config": "configs/fsdd_cnn_newvoices.yaml", "overrides": [],
                                           "official": {"seeds": [0, 1, 2], "mean": 0.995, "std": 0.001, "test_acc": []},
                                           "loso": loso, "noise": NOISE},
              command={"loso": "python -m benchmarks.accuracy loso configs/fsdd_cnn_newvoices.yaml"})
    results = report.Results(root)
    block = report.render_readme_block(results)
    assert "| CNN alone (`fsdd_cnn_newvoices.yaml`) | 99.5 | 88.3 / 80.0 | 90.0 / 90.0 | – |" in block
    # ms per clip: the shipped files' speed (benchmarks.speed classify on 1 thread), not the accuracy runs' torch path
    rows = [{"model": model, "runtime": "onnx", "p50_ms": ms, "p99_ms": ms, "clips_per_s_batch64": 1.0, "size_kib": 1.0,
             "test_acc": 1.0} for model, ms in (("bundled", 1.849), ("/tmp/copy/fsdd_cnn_newvoices.int8.onnx", 9.0),
                                                (f"{report.BUNDLE}/fsdd_cnn_newvoices.int8.onnx", 0.687))]
    classify = {"benchmark": "speed", "arm": "classify", "name": "classify-models-cpu", "protocol": "p", "command": "c",
                "machine": MACHINE, "recipe": {}, "figures": {"rows": rows, "targets": {"p50_ms": 3.0, "threads": 1}}}
    (root / "speed").mkdir()
    (root / "speed" / "classify-models-cpu.json").write_text(json.dumps(classify))
    block = report.render_readme_block(report.Results(root))
    assert "| CNN alone (`fsdd_cnn_newvoices.yaml`) | 99.5 | 88.3 / 80.0 | 90.0 / 90.0 | 0.69 |" in block
    assert "| default: ensemble of the two below | – | – | – | 1.85 |" in block
    assert "(`python -m benchmarks.speed classify`)" in block
    results = report.Results(root)
    assert "| speech embedding alone (`fsdd_embedding_newvoices.yaml`) | – | – | – | – |" in block
    doc = report.render_doc(results)
    assert "| CNN alone (`fsdd_cnn_newvoices.yaml`) | 99.50 ± 0.10 | 0, 1, 2 |" in doc
    assert "| CNN alone (`fsdd_cnn_newvoices.yaml`) | 90.0 | 90.0 | 90.0 | 90.0 | 90.0 | 80.0 | 88.3 | 80.0 (yweweler) |" in doc
    assert "python -m benchmarks.accuracy loso configs/fsdd_cnn_newvoices.yaml\n" in doc  # the result's own command
    assert f"`{root}/accuracy/fsdd_cnn_newvoices.json`" in doc  # each table names its result files

    # a benchmark the generator has no table for still gets its figures, never dropped
    other = {"benchmark": "newbench", "name": "x", "protocol": "p", "command": "python -m benchmarks.newbench",
             "machine": MACHINE, "recipe": {}, "figures": {"rss_mb": 12.5, "cases": [{"name": "nan", "ms": 1.0}]}}
    (root / "newbench").mkdir()
    (root / "newbench" / "x.json").write_text(json.dumps(other))
    doc = report.render_doc(report.Results(root))
    assert "## newbench" in doc and "| rss_mb | 12.50 |" in doc and "| cases[0].name | nan |" in doc


def test_the_readme_is_written_between_its_markers_only(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{report.START}\nold figures\n{report.END}\n\nrest\n")
    doc = tmp_path / "docs" / "results.md"
    argv = ["--out", str(tmp_path / "none"), "--doc", str(doc), "--readme", str(readme)]
    assert report.main([*argv, "--check"]) == 1  # nothing generated yet
    assert report.main(argv) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n\n" + report.START + "\n") and text.endswith(report.END + "\n\nrest\n")
    assert "old figures" not in text and "| model | official split %" in text
    assert doc.read_text() == report.render_doc(report.Results(tmp_path / "none"))
    assert report.main([*argv, "--check"]) == 0
    doc.write_text(doc.read_text().replace("–", "99.9", 1))  # a hand-typed figure
    assert report.main([*argv, "--check"]) == 1

    readme.write_text("# no markers\n")
    capsys.readouterr()
    assert report.main(argv) == 2
    assert "README lacks the lines" in capsys.readouterr().err and readme.read_text() == "# no markers\n"


def test_the_committed_results_are_result_files():
    """Every JSON directly under benchmarks/results/<benchmark>/ is a result the report reads (its keys)."""
    root = REPO / "benchmarks" / "results"
    if not root.is_dir():
        pytest.skip("no results committed yet")
    for path in sorted(root.glob("*/*.json")):
        record = json.loads(path.read_text())
        assert {"benchmark", "name", "protocol", "command", "machine", "recipe", "figures"} <= set(record), path
