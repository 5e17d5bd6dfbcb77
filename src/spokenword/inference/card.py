"""Model cards: the Markdown description written next to every export (``MODEL.onnx.md``) and with the
bundled model (``MODEL_CARD.md``). Torch-free: built from an export's metadata and its run's
``report.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from spokenword.labels import NAMES, REJECTIONS, is_rejection

#: FSDD, the training data of every config in configs/
FSDD_DATA = ("Free Spoken Digit Dataset (FSDD) v1.0.10, https://github.com/Jakobovski/free-spoken-digit-dataset: "
             "3,000 recordings of the English digits 0-9 by six speakers, 8 kHz mono wav. "
             "Licence: Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0).")
#: what covers Google's speech_embedding weights in the embedding member (checked in the openwakeword
#: 0.4.0 wheel's own files; docs/inference.md "Model cards")
SPEECH_EMBEDDING_LICENCE = (
    "The network starts from Google's speech_embedding model (arXiv:2002.01322) as re-implemented and "
    "distributed in the openwakeword 0.4.0 wheel (`openwakeword/resources/embedding_model.onnx`). What that "
    "wheel's own files say: its LICENSE file is Apache 2.0 and its METADATA classifier is "
    "\"License :: OSI Approved :: Apache Software License\" (both about the code); its README (the METADATA long "
    "description) says the embedding model \"is provided by Google (https://tfhub.dev/google/speech_embedding/1) "
    "as a TFHub module under an Apache-2.0 license\", and, in its License section, that \"All of the included "
    "pre-trained models are licensed under the Creative Commons Attribution-NonCommercial-ShareAlike 4.0 "
    "International license due to the inclusion of datasets with unknown or restrictive licensing as part of "
    "the training data\". The wheel does not say whether that last sentence covers the re-implemented "
    "embedding model (trained by Google, not on openWakeWord's data) or only the wake-word models. Until that is "
    "settled, treat these weights as possibly CC BY-NC-SA 4.0: no commercial use without checking with the "
    "openWakeWord author; the Apache-2.0 statement applies to Google's TFHub original.")


def card_path(model: str | Path) -> Path:
    """Where the card of an export goes: ``model.onnx`` -> ``model.onnx.md``."""
    return Path(model).with_name(Path(model).name + ".md")


def _pretrained(metadata: dict) -> bool:
    return "SpeechEmbedding" in str(metadata.get("network", ""))


def _percent(value) -> str:
    return "-" if value is None else f"{100 * float(value):.2f} %"


def calibration_line(metadata: dict) -> str:
    """Which clips calibrated an int8 export's activation ranges (its ``calibration`` metadata)."""
    about = metadata.get("calibration")
    clips = metadata.get("calibration_clips", "?")
    if not isinstance(about, dict):  # an export made before the calibration data was recorded: FSDD always
        return f"{clips} clips of FSDD's official training split (takes 10-49)."
    where = (f"{about.get('clips', clips)} clips of the training part of `{about.get('corpus')}`, split "
             f"`{about.get('split')}` (never its validation or test part)")
    if about.get("checkpoint_training_data"):
        return where + ": the data the checkpoint was trained on."
    return where + f": {about.get('note', 'not confirmed to be the data the checkpoint was trained on')}."


def member_section(name: str, metadata: dict, report: dict | None) -> str:
    """The part of a card that describes one export."""
    features = metadata.get("features", {})
    lines = [
        f"- file: `{name}` ({metadata.get('precision', '?')}), source checkpoint `{metadata.get('source_checkpoint', '?')}`",
        f"- network: `{metadata.get('network', 'unknown')}`, {metadata.get('parameters', 'unknown')} parameters",
        f"- labels: {', '.join(metadata.get('labels', []))}",
        f"- sample rate: {metadata.get('sample_rate')} Hz (any input is mixed to mono and resampled to it)",
        "- front end (in the graph, `features` of the sidecar JSON): "
        + ", ".join(f"{k}={v}" for k, v in features.items()),
        f"- host steps before the graph: {', '.join(metadata.get('host_steps', [])) or 'none'}",
    ]
    if report:
        test, val = report.get("test", {}), report.get("validation", {})
        lines += [
            f"- training: split `{report.get('split')}` ({report.get('protocol')}), {report.get('train_count')} "
            f"training clips, {report.get('epochs')} epochs",
            f"- test accuracy (PyTorch, the run's report.json): {_percent(test.get('acc'))} on {test.get('count')} "
            f"clips; validation {_percent(val.get('acc'))} on {val.get('count')} clips",
        ]
    lines.append("- training data: " + FSDD_DATA)
    if any(is_rejection(label) for label in metadata.get("labels", [])):
        lines.append("- not-a-digit data (`_unknown_`, `_silence_`): " + NEGATIVES_DATA)
    if metadata.get("precision") == "int8":
        lines.append("- int8 calibration: " + calibration_line(metadata))
    lines.append("- pretrained weights: " + (SPEECH_EMBEDDING_LICENCE if _pretrained(metadata) else
                                             "none (trained from scratch on the data above)."))
    return "\n".join(lines)


LIMITS = """## Intended use and known limits

- Intended use: recognising one spoken English digit (0-9) per clip, or digit strings with `spokenword
  transcribe`; demonstrations, research and teaching.
- Trained on six FSDD voices only (adult speakers, mostly male, English with several accents): expect lower
  accuracy on other voices, children, far-field or noisy recordings. The official-split figure is measured on
  those same six voices (other takes); docs/results.md measures voices never heard.
- FSDD is 8 kHz audio: everything above 4 kHz is discarded, so the model never uses it.
- Other words and noise: a model with `_unknown_` and `_silence_` outputs (the bundled one) answers "not a
  digit" for them, but learnt "other words" from 25 English words only: a word that sounds like a digit
  ("tree", "for", "ate") can still be taken for one (false accept rates above and in docs/results.md). A model
  without those outputs gives every clip one of the ten digits; use the score (`--reject-below`) there.
- Not for security decisions or for identifying speakers."""


def export_card(model: str | Path, metadata: dict, report: dict | None = None) -> str:
    """The card of one export (``spokenword export``)."""
    name = Path(model).name
    return "\n\n".join([
        f"# Model card: {name}",
        "spokenword ONNX export: audio in (float32 mono samples at the sample rate below), class probabilities "
        "out; run it with `spokenword classify -m " + name + " FILE` or `spokenword.load_model(PATH)` "
        "(ONNX Runtime, no torch).",
        "## Model\n\n" + member_section(name, metadata, report),
        ("## Metrics\n\nFrom the run's `report.json`: accuracy of the checkpoint on its split's test recordings, "
         "which training never saw and model selection never used. An int8 export may differ by a few clips; "
         "`spokenword evaluate " + name + " --split official` measures the export itself.")
        if report else "## Metrics\n\nNo report.json was found beside the checkpoint: none recorded.",
        LIMITS,
    ]) + "\n"


def write_export_card(model: str | Path, metadata: dict, checkpoint: str | Path | None = None) -> Path:
    """Write :func:`export_card` next to ``model``; the report is the checkpoint's run's ``report.json``
    (``runs/NAME/version_N/checkpoints/X.ckpt`` -> ``runs/NAME/version_N/report.json``) when there is one."""
    report = None
    if checkpoint is not None:
        candidate = Path(checkpoint).resolve().parent.parent / "report.json"
        try:
            report = json.loads(candidate.read_text()) if candidate.is_file() else None
        except (OSError, ValueError):
            report = None
    path = card_path(model)
    path.write_text(export_card(model, metadata, report))
    return path


NEGATIVES_DATA = ("25 non-digit English words (817 clips, 236 speakers) and the six background-noise recordings of "
                  "Google's Speech Commands v0.02 (Warden 2018, arXiv:1804.03209), CC BY 4.0 "
                  "(https://creativecommons.org/licenses/by/4.0/); training, validation and test parts by speaker "
                  "(words) and by time (noise), spokenword.data.corpora.negatives.")


def bundle_card(name: str, members: list[str], metadata: dict[str, dict], reports: dict[str, dict | None],
                accuracy: float, count: int, rejection: dict | None = None, adaptable: dict | None = None) -> str:
    """``MODEL_CARD.md`` of a bundled model: the ensemble of ``members`` (export file names); ``rejection``:
    its ``reject_below``, false reject and false accept rates on the test part (see :mod:`spokenword.inference.bundle`)."""
    first = metadata[members[0]]
    labels = list(first.get("labels", []))
    labels += [r for r in REJECTIONS if r not in labels and any(r in metadata[m].get("labels", []) for m in members)]
    listed = ", ".join(f"`{m}` ({metadata[m].get('precision')}, {metadata[m].get('parameters')} parameters)"
                       for m in members)
    sections = [
        f"# Model card: {name}",
        "The pretrained model that ships with spokenword: `spokenword classify FILE`, `spokenword transcribe FILE`, "
        "`spokenword serve` and `spokenword.load_model()` use it when no model is named. It is the ensemble of "
        f"{len(members)} ONNX exports (the mean of their probabilities; the members with `_unknown_`/`_silence_` "
        "outputs decide whether it is a digit), run by ONNX Runtime without torch, and is "
        "rebuilt from the training runs of `make train` by `make model` (`spokenword bundle`).",
        "## Summary\n\n"
        f"- task: spoken digit classification, labels {', '.join(labels)}\n"
        f"- input: any audio file or array (mixed to mono, resampled to {first.get('sample_rate')} Hz)\n"
        f"- members: {listed}\n"
        f"- total parameters: {sum(int(metadata[m].get('parameters') or 0) for m in members)}",
        "## Metrics\n\n"
        f"Accuracy of this bundle (the files beside this card) on FSDD's official test split: **{100 * accuracy:.2f} %** "
        f"of {count} recordings (takes 0-4 of every speaker and digit; training used takes 10-49, model selection "
        "takes 5-9). Reproduce it with `spokenword evaluate --split official` (FSDD at `$SPOKENWORD_DATA`); "
        "`tests/integration/test_bundled_model.py` checks it. Each member's own figures (PyTorch, its run's "
        "`report.json`, shipped beside it) are below. These are six voices the model was trained on (other takes); "
        "on voices never heard see docs/results.md.",
    ]
    if rejection and rejection.get("negatives"):
        accepted = ", ".join(f"{100 * rate:.2f} % of {rejection['negatives'][label]} {NAMES[label]}"
                             for label, rate in rejection["false_accept_rate"].items())
        sections.append(
            "## Not a digit\n\n"
            f"It answers `_unknown_` (another word) or `_silence_` (noise, no speech) for what is not a digit. On "
            f"held-out noise and other people's words, at its threshold `reject_below` = {rejection['reject_below']} (a word "
            "is the answer when it scores at least this; chosen by leave-one-speaker-out cross-validation, "
            f"docs/results.md; `--reject-below` sets another): digits of the official test split falsely rejected "
            f"{100 * rejection['false_reject_rate']:.2f} %; accepted as a digit: {accepted}. As a closed-set classifier "
            f"(`--reject-below 0`: every clip answered with its best digit) it scores {100 * rejection['closed_set_accuracy']:.2f} % "
            "of the official test split. Training and test words "
            "come from disjoint speakers of Speech Commands (CC BY 4.0, by Pete Warden, Google: 25 English words, "
            "arXiv:1804.03209), noise from disjoint time spans of its background-noise recordings; "
            "`python -m benchmarks.reject` measures it, also as false digits per hour of long audio (docs/results.md).")
    if adaptable:
        states = ", ".join(f"`{state}` (for `{member}`)" for member, state in adaptable.items())
        sections.append(
            "## Adapt it\n\n"
            "`spokenword adapt FOLDER --out MINE` (or `spokenword.adapt(None, FOLDER, MINE)`; the training extra) adds "
            "the words of a folder of takes (one sub-folder per word) to this model, or tunes its digits to one voice, "
            f"in seconds: the pretrained backbone stays frozen and only the head learns. It starts from {states}: "
            "the member's head weights and a rehearsal set (pooled speech embeddings of clips of its own training split, "
            "a few dozen per label), so "
            "the words it knows are not forgotten. docs/training.md, \"Adapt a model\".")
    for member in members:
        sections.append(f"## Member `{member}`\n\n" + member_section(member, metadata[member], reports.get(member)))
    sections.append(LIMITS)
    return "\n\n".join(sections) + "\n"
