"""Build the bundled pretrained model (``make model``) from training runs: each run's best checkpoint is
exported to ONNX (int8 where that costs no accuracy on FSDD's official test split, else float), and the
folder gets the exports, their metadata (``.onnx.json``) and cards (``.onnx.md``), each run's
``report.json``, the adaptable state of each member on the pretrained speech embedding (``NAME.adapt.npz``:
its head and rehearsal set, for ``spokenword adapt``), ``MODEL_CARD.md`` and ``manifest.json`` (sha256 of
every file). Needs the ``train``
extra (torch, onnx). The folder is written beside its destination and renamed into place, so a failed
build leaves the old bundle as it was.

    spokenword bundle runs/fsdd_cnn_newvoices --with runs/fsdd_embedding_newvoices \\
        --out src/spokenword/pretrained/fsdd-digits
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from spokenword.inference.base import ModelError, model_file
from spokenword.inference.card import bundle_card
from spokenword.pretrained import MANIFEST, digests, staged_folder


def _run_name(run: Path, checkpoint: Path) -> str:
    """``runs/fsdd_cnn_newvoices`` (or ``.../version_N``) -> ``fsdd_cnn_newvoices`` (the experiment's name): the
    folder given; for a checkpoint file, the run folder it lies in."""
    folder = Path(run) if Path(run).is_dir() else checkpoint.parent.parent  # runs/NAME/version_N
    return folder.parent.name if folder.name.startswith("version_") else folder.name


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when under it (no home folders in shipped files)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def _shipped(report: dict) -> dict:
    """A run's report as the package ships it: without the machine it ran on (CPU, platform), which belongs to
    the run folder and docs/results.md, not to the installed package; its checkpoint as the manifest's sources."""
    shipped = dict(report)
    if "provenance" in report:
        shipped["provenance"] = {k: v for k, v in (report["provenance"] or {}).items() if k not in ("cpu", "platform")}
    if report.get("checkpoint"):
        shipped["checkpoint"] = _shown(Path(report["checkpoint"]))
    return shipped


def _scores(paths: list[Path], recordings, reject_below: float | None):
    """The ensemble of ``paths`` on ``recordings`` at ``reject_below`` (an Evaluation)."""
    from spokenword.inference.evaluate import evaluate
    from spokenword.inference.load import load_model

    result = evaluate(load_model(*paths, reject_below=reject_below), recordings)
    if result.errors:
        raise RuntimeError(f"evaluation failed on {len(result.errors)} recordings: {result.errors[0]}")
    return result


def _errors(result) -> tuple[float, float]:
    """(digit accuracy, share of not-a-digit clips accepted as a digit): int8 must not worsen either."""
    d = result.to_dict()
    negatives = sum(d["negatives"].values())
    accepted = sum(d["false_accept_rate"][k] * n for k, n in d["negatives"].items())
    return result.accuracy, accepted / negatives if negatives else 0.0


def bundle(runs: list[str | os.PathLike], out: str | os.PathLike, *, data_root=None, int8: str = "auto",
           calibration_clips: int = 200, reject_below: float | None = None, log=print) -> dict:
    """Write the bundle of the ensemble of ``runs`` (run folders or checkpoints) to ``out``; returns its manifest.

    ``int8``: ``auto`` (each member int8 when the ensemble's official-split digit accuracy is not lower and
    its false accepts not higher with it, members tried in order), ``never``. ``reject_below``: the word
    threshold stored in the manifest (``load_model()`` uses it; ``None``: the models' own best label), chosen
    beforehand (``python -m benchmarks.accuracy ensemble``: leave-one-speaker-out cross-validation); the
    official test split scores the bundle, with held-out other words and noise where the non-digit data is
    under the data root (:func:`spokenword.data.corpora.negatives.with_negatives`)."""
    from spokenword.data.corpora import FSDD
    from spokenword.data.corpora.negatives import with_negatives
    from spokenword.data.splits import make_split, resolve_root
    from spokenword.inference.export import calibration_data, export_onnx, quantize_onnx, sidecar_path
    from spokenword.inference.card import write_export_card
    from spokenword.inference.onnx import read_metadata
    from spokenword.training.adapt import STATE_SUFFIX, is_adaptable, write_checkpoint_state

    if int8 not in ("auto", "never"):
        raise ValueError(f"int8 must be auto or never, not {int8!r}")
    checkpoints = [model_file(r) for r in runs]
    names = [_run_name(Path(r), c) for r, c in zip(runs, checkpoints)]
    if len(set(names)) < len(names):  # one member's files would overwrite the other's
        raise ModelError(f"two members are named {max(names, key=names.count)}: bundle runs whose experiment "
                         "folders have different names (runs/NAME)")
    root = resolve_root(data_root)
    split = make_split(with_negatives(FSDD(), root).recordings(root), "official")
    out = Path(out).resolve()
    with staged_folder(out) as staging:
        work = staging / ".work"
        work.mkdir()
        floats = [export_onnx(c, work / f"{n}.onnx") for c, n in zip(checkpoints, names)]
        chosen = list(floats)
        best = _errors(_scores(chosen, split.test, reject_below))
        log(f"float ensemble: {100 * best[0]:.2f}% of the official test split's digits, {100 * best[1]:.2f}% of "
            f"the other words and noise accepted (reject below {reject_below})")
        if int8 == "auto":
            for i, (path, name, checkpoint) in enumerate(zip(floats, names, checkpoints)):
                meta = read_metadata(path)
                waves, about = calibration_data(checkpoint, meta["sample_rate"], meta["features"], data_root=data_root,
                                                clips=calibration_clips)
                quantized = quantize_onnx(path, work / f"{name}.int8.onnx", waves, about)
                trial = chosen[:i] + [quantized] + chosen[i + 1:]
                figures = _errors(_scores(trial, split.test, reject_below))
                keep = figures[0] >= best[0] and figures[1] <= best[1]
                log(f"{name} int8: {100 * figures[0]:.2f}% / {100 * figures[1]:.2f}% accepted -> "
                    f"{'int8' if keep else 'float (int8 costs accuracy)'}")
                if keep:
                    chosen, best = trial, figures
        result = _scores(chosen, split.test, reject_below)
        accuracy, count = result.accuracy, result.word_count
        closed = result.at(0.0)["accuracy"]  # every clip answered with its best digit
        rejection = {"reject_below": reject_below, "closed_set_accuracy": closed,
                     "false_reject_rate": result.false_reject_rate,
                     "false_accept_rate": result.to_dict()["false_accept_rate"], "negatives": result.to_dict()["negatives"]}
        members, adaptable = [], {}
        for path, checkpoint, name in zip(chosen, checkpoints, names):
            for file in (path, sidecar_path(path)):
                (staging / file.name).write_bytes(file.read_bytes())
            if is_adaptable(checkpoint):  # its head and rehearsal set, for `spokenword adapt` (torch side)
                write_checkpoint_state(checkpoint, staging / f"{name}{STATE_SUFFIX}", data_root=data_root, log=log)
                adaptable[path.name] = f"{name}{STATE_SUFFIX}"
            report = checkpoint.parent.parent / "report.json"
            if report.is_file():
                (staging / f"{name}.report.json").write_text(json.dumps(_shipped(json.loads(report.read_text())),
                                                                         indent=2) + "\n")
            write_export_card(staging / path.name, read_metadata(staging / path.name), checkpoint)
            members.append(path.name)
        shutil.rmtree(work)
        metadata = {m: json.loads((staging / (m + ".json")).read_text()) for m in members}
        reports = {m: (json.loads(r.read_text()) if (r := staging / f"{n}.report.json").is_file() else None)
                   for m, n in zip(members, names)}
        (staging / "MODEL_CARD.md").write_text(bundle_card(out.name, members, metadata, reports, accuracy, count, rejection,
                                                              adaptable))
        manifest = {
            "name": out.name,
            "members": members,
            "official_test_accuracy": accuracy,
            "official_test_count": count,
            **rejection,
            "protocol": "FSDD v1.0.10 official split: test = takes 0-4 of every speaker and digit (300 recordings), "
                        "never used in training or model selection, with the test speakers' other words and the test "
                        "part of the noise recordings (spokenword.data.corpora.negatives) where present, at reject_below; "
                        "`spokenword evaluate --split official`",
            "sources": [_shown(c) for c in checkpoints],
            "adaptable": adaptable,
            "files": digests(staging),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
