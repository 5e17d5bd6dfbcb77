"""The ``spokenword`` command. ``main(argv)`` returns an exit code, so tests call it in-process.

Exit codes: 0 success, 1 some inputs failed (the rest were processed), 2 usage error (bad
arguments, missing data or checkpoint, config errors).

``fit``, ``validate`` and ``test`` are LightningCLI subcommands (see :mod:`spokenword.training`);
the others are plain argparse commands defined here and in their own modules.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2
LIGHTNING_COMMANDS = ("fit", "validate", "test")
#: a first positional argument with one of these suffixes (or a training run's folder) is a model
MODEL_SUFFIXES = (".ckpt", ".onnx")
#: what a missing module means: the extra that brings it (``pip install 'spokenword[EXTRA]'``)
EXTRAS = {name: "train" for name in ("torch", "lightning", "torchmetrics", "jsonargparse", "matplotlib", "yaml",
                                     "onnx", "onnxscript", "openwakeword", "tensorboard")}
EXTRAS.update({name: "serve" for name in ("fastapi", "uvicorn", "multipart", "starlette", "websockets")})
EXTRAS["av"] = "formats"
EXTRA_NAMES = {"train": "the training extra", "serve": "the web service extra", "formats": "the audio formats extra"}


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def _data_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data.root", dest="data_root", default=None,
                        help="data root (default: $SPOKENWORD_DATA, else ./data); FSDD lives in <root>/fsdd/recordings")


def _ensemble_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with", dest="also", action="append", default=[], metavar="MODEL",
                        help="another checkpoint or export whose probabilities are averaged with the first's "
                             "(an ensemble; repeatable; docs/inference.md, figures in docs/results.md)")


def _reject_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reject-below", type=float, default=None, metavar="SCORE",
                        help="answer the best word only when it scores at least SCORE (0-1), else not a word "
                             "(_unknown_/_silence_); default: the bundled model's value (chosen by leave-one-speaker-out "
                             "cross-validation), else the model's own best label")


def _max_seconds_argument(parser: argparse.ArgumentParser, default: float | None, what: str, shown: str) -> None:
    parser.add_argument("--max-seconds", type=float, default=default,
                        help=f"longer {what} are refused with one error line, never decoded past the limit "
                             f"(default {shown})")


def _checked_max_seconds(args) -> float | None:
    """``--max-seconds``, checked (``None``: the command's default)."""
    value = args.max_seconds
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"--max-seconds must be a positive number of seconds, got {value:g}")
    return value


def _is_model(arg: str) -> bool:
    """Whether a positional argument names a model: a ``.ckpt``/``.onnx`` file, a training run's folder
    (``report.json`` in it or in its ``version_*`` folders) or a model folder (``manifest.json``: ``spokenword
    adapt``'s output, a copy of the bundle); audio files and data folders are not."""
    from spokenword.inference.base import MODEL_FOLDER_MANIFEST

    path = Path(arg)
    if path.suffix.lower() in MODEL_SUFFIXES:
        return True
    return path.is_dir() and ((path / "report.json").is_file() or any(path.glob("version_*/report.json"))
                              or (path / MODEL_FOLDER_MANIFEST).is_file())


def _split_model(args, positionals: list[str]) -> list[str]:
    """Set ``args.model`` (``-m``/``--model``, else a first positional that is a model, else ``None``: the
    bundled model) and return the remaining positionals."""
    if args.model is None and positionals and _is_model(positionals[0]):
        args.model, positionals = positionals[0], positionals[1:]
    return list(positionals)


def _audio_files(args) -> list[str]:
    files = _split_model(args, args.files)
    if not files:
        raise UsageError(f"{args.command} needs audio files after the model ({args.model})")
    return files


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", default=None, metavar="MODEL",
                        help="checkpoint (.ckpt), export (.onnx) or training run folder (its best checkpoint); "
                             "default: the bundled pretrained model (fsdd-digits). The old form with the model "
                             "as the first argument still works")


def _open_model(args):
    """The classifier of ``args.model``, or the :class:`~spokenword.inference.ensemble.Ensemble` of it
    and every ``--with`` model; each file on its own runtime (a checkpoint on PyTorch, an ``.onnx``
    export on ONNX Runtime without importing torch), decoding at most ``--max-seconds`` per file."""
    from spokenword.inference.load import load_model

    return load_model(args.model, *args.also, max_seconds=_checked_max_seconds(args),  # None: the bundled model
                      reject_below=args.reject_below)


def _cmd_download(args) -> int:
    from spokenword.data.splits import resolve_root
    from spokenword.data.corpora import fsdd

    root = resolve_root(args.data_root)
    if fsdd.is_installed(root) and not args.force:
        print(f"FSDD {fsdd.VERSION} already at {fsdd.FSDD.folder(root)}")
        return EXIT_OK
    folder = fsdd.download(root, force=args.force)
    print(f"FSDD {fsdd.VERSION} verified and installed at {folder}")
    return EXIT_OK


def _report(pairs, args, as_json, as_line) -> int:
    """Print each ``(file, result or error)`` of a batch as it comes (``as_line``), or all as one JSON
    object (``as_json``) with ``--json``; errors go to stderr and never stop the rest."""
    failed = 0
    results = {}
    for path, result in pairs:
        if isinstance(result, Exception):
            failed += 1
            print(f"error: {result}", file=sys.stderr)
        elif args.json:
            results[str(path)] = as_json(result)
        else:
            print(f"{path}\t{as_line(result)}")
    if args.json:
        print(json.dumps(results, indent=2))
    return EXIT_FAILED_INPUTS if failed else EXIT_OK


def _cmd_classify(args) -> int:
    files = _audio_files(args)
    classifier = _open_model(args)  # torch-free for .onnx exports and the bundled model
    return _report(classifier.predict_many(files, top_k=args.top_k), args, lambda r: r,
                   lambda r: f"{r[0]['label']}\t{r[0]['score']:.3f}")


def _cmd_evaluate(args) -> int:
    from spokenword.data.corpora.folder import scan
    from spokenword.inference.evaluate import evaluate

    rest = _split_model(args, args.inputs)
    if len(rest) > 1:
        raise UsageError(f"evaluate takes [MODEL] [DATA], got {len(rest) + (args.model is not None)} arguments")
    args.data = rest[0] if rest else None
    classifier = _open_model(args)
    if args.data is None and args.split is None:
        raise UsageError("evaluate needs DATA (a folder or manifest) or --split (FSDD at --data.root)")
    if args.data is not None:
        recordings = scan(Path(args.data))
    else:
        from spokenword.data.splits import resolve_root
        from spokenword.data.corpora import FSDD
        from spokenword.data.corpora.negatives import with_negatives

        root = resolve_root(args.data_root)
        recordings = with_negatives(FSDD(), root).recordings(root)
    if args.split is not None:
        from spokenword.data.splits import make_split

        recordings = make_split(recordings, args.split).test
    result = evaluate(classifier, recordings)
    for line in result.errors:
        print(f"error: {line}", file=sys.stderr)
    if args.det:
        from spokenword.training.plots import det_plot

        print(f"DET curve: {det_plot(result.det(), Path(args.det), result.reject_below)}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_FAILED_INPUTS if result.errors else EXIT_OK
    print(f"accuracy {100 * result.accuracy:.2f}% on {result.word_count} recordings of words"
          + (f" ({len(result.errors)} failed)" if result.errors else ""))
    summary = result.to_dict()
    if summary["negatives"]:
        from spokenword.labels import NAMES

        accepts = ", ".join(f"{100 * rate:.2f}% of {summary['negatives'][label]} {NAMES[label]} ({label})"
                            for label, rate in summary["false_accept_rate"].items())
        print(f"false rejects {100 * result.false_reject_rate:.2f}% of the words; false accepts (answered with a "
              f"word): {accepts}; " + ("the model's own answers" if result.reject_below is None
                                       else f"words accepted from a score of {result.reject_below:g}"))
    for label, acc in summary["per_class_accuracy"].items():
        print(f"  {label:>9}  {'-' if acc is None else f'{100 * acc:6.2f}%'}")
    for speaker, acc in summary["per_speaker_accuracy"].items():
        print(f"  speaker {speaker}: {100 * acc:.2f}%")
    return EXIT_FAILED_INPUTS if result.errors else EXIT_OK


def _cmd_export(args) -> int:
    from spokenword.inference import export

    if args.format == "torchscript":
        raise UsageError("--format torchscript was removed (torch.jit is deprecated in PyTorch); "
                         "export ONNX (--format onnx) and run it with ONNX Runtime")
    if args.format not in export.FORMATS:
        raise UsageError(f"unknown --format {args.format!r}; expected one of {', '.join(export.FORMATS)}")
    paths = export.export(args.model, Path(args.out), format=args.format, int8=args.int8, data_root=args.data_root,
                          calibration_clips=args.calibration_clips, max_seconds=args.max_seconds)
    for path, size in export.file_sizes(paths).items():
        print(f"{path}\t{size / 1024:.1f} KiB")
    return EXIT_OK


def _cmd_transcribe(args) -> int:
    from spokenword.inference.load import load_model
    from spokenword.transcribe.decode import DEFAULT_THRESHOLD, Transcriber

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    max_seconds = _checked_max_seconds(args)  # None: TRANSCRIBE_MAX_SECONDS; the classifier sees words only
    files = _audio_files(args)
    from spokenword.transcribe.segment import VadSettings

    transcriber = Transcriber(load_model(args.model, *args.also, reject_below=args.reject_below),
                              threshold=threshold, max_seconds=max_seconds, vad=VadSettings(speech=args.segmenter == "speech"))
    return _report(transcriber.transcribe_many(files), args, lambda r: r.to_dict(), lambda r: r.text)


def _cmd_figures(args) -> int:
    from spokenword.training import figures
    from spokenword.data.splits import resolve_root

    paths = figures.write_all(resolve_root(args.data_root), Path(args.out), speaker=args.speaker)
    for path in paths:
        print(path)
    return EXIT_OK


def _cmd_serve(args) -> int:
    from spokenword.serve.app import serve

    if not (math.isfinite(args.max_seconds) and args.max_seconds > 0
            and math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        raise UsageError("--max-seconds and --max-upload-mb must be positive numbers")
    if (args.max_batch is not None and args.max_batch < 1) or (
            args.batch_ms is not None and not (math.isfinite(args.batch_ms) and args.batch_ms >= 0)):
        raise UsageError("--max-batch must be at least 1 and --batch-ms a number >= 0")
    batching = {name: value for name, value in (("max_batch", args.max_batch), ("batch_ms", args.batch_ms))
                if value is not None}  # what is not given: serve()'s defaults
    if args.max_batch == 1:
        batching["batch_ms"] = None  # one request per model call: no window to wait
    from spokenword.serve.teach import TeachError
    from spokenword.serve.workers import WorkersError

    try:
        serve(args.model or args.model_option, also=args.also, host=args.host, port=args.port, max_seconds=args.max_seconds, max_upload_mb=args.max_upload_mb,
              runtime=args.runtime, reject_below=args.reject_below, teach=args.teach, teach_token=args.teach_token,
              workers=args.workers, **batching)
    except (TeachError, WorkersError) as err:
        raise UsageError(str(err)) from None
    return EXIT_OK


def _cmd_bundle(args) -> int:
    from spokenword.inference.bundle import bundle

    manifest = bundle([args.run, *args.also], Path(args.out), data_root=args.data_root, int8=args.int8,
                      calibration_clips=args.calibration_clips, reject_below=args.reject_below)
    print(f"{args.out}: {', '.join(manifest['members'])}; official test split "
          f"{100 * manifest['official_test_accuracy']:.2f}% of {manifest['official_test_count']}")
    return EXIT_OK


def _cmd_adapt(args) -> int:
    from spokenword.training.adapt import adapt

    if len(args.paths) > 2:
        raise UsageError("adapt takes at most a MODEL and a FOLDER; see spokenword adapt --help")
    source, folder = (None, args.paths[0]) if len(args.paths) == 1 else args.paths
    adapt(source, folder, Path(args.out), steps=args.steps, views=args.views, seed=args.seed,
          others=args.others, data_root=args.data_root)
    return EXIT_OK


def _files_and_model(parser: argparse.ArgumentParser, files: str, json_shape: str) -> None:
    """The audio files, after an optional model (or ``-m``), and ``--json`` of a command that reads files."""
    parser.add_argument("files", nargs="+", metavar="[MODEL] FILE",
                        help=f"{files}, after an optional model (.ckpt, .onnx, run folder; default the bundled model)")
    _model_option(parser)
    parser.add_argument("--json", action="store_true", help=f"print JSON: {json_shape}")


def build_parser() -> argparse.ArgumentParser:
    from spokenword.audio import DEFAULT_MAX_SECONDS
    from spokenword.inference.load import RUNTIMES

    parser = argparse.ArgumentParser(
        prog="spokenword",
        description="Spoken-word recognition. Training: spokenword fit|validate|test --config CONFIG.yaml (see --help of each).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name} (spokenword {name} --help)", add_help=False)

    p = sub.add_parser("download", help="download and verify FSDD v1.0.10")
    _data_root_argument(p)
    p.add_argument("--force", action="store_true", help="download again even if present")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("classify", help="print the predicted label of each audio file")
    _files_and_model(p, "audio files (wav, flac, ogg, mp3; m4a, webm, mp4 with the formats extra; any rate, mono or "
                        "stereo)", "per file a list of {label, score}")
    p.add_argument("--top-k", type=int, default=None, help="labels per file in --json (default: all)")
    _max_seconds_argument(p, DEFAULT_MAX_SECONDS, "files", f"{DEFAULT_MAX_SECONDS:g} s")
    _ensemble_argument(p)
    _reject_argument(p)
    p.set_defaults(func=_cmd_classify)

    p = sub.add_parser("evaluate", help="score a model (default: the bundled one) on labelled recordings")
    p.add_argument("inputs", nargs="*", metavar="[MODEL] [DATA]",
                   help="an optional model (.ckpt, .onnx, run folder; default the bundled model), then DATA: a folder "
                        "(FSDD-style names, one sub-folder per label, or labels.csv) or a manifest .csv "
                        "(default with --split: FSDD at --data.root)")
    _model_option(p)
    p.add_argument("--split", choices=("official",), default=None,
                   help="score only that split's test recordings (FSDD takes 0-4, and the held-out speakers' other "
                        "words and noise when <root>/speech_commands_words exists), never seen in its training")
    _data_root_argument(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _max_seconds_argument(p, DEFAULT_MAX_SECONDS, "recordings", f"{DEFAULT_MAX_SECONDS:g} s")
    _ensemble_argument(p)
    _reject_argument(p)
    p.add_argument("--det", default=None, metavar="PLOT.png",
                   help="write the DET curve (false rejects vs false accepts over thresholds) to this image "
                        "(needs the training extra's matplotlib)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("export", help="export a checkpoint for deployment: ONNX (float or int8), audio in, probabilities out")
    p.add_argument("model", help="checkpoint (.ckpt) or training run folder (its best checkpoint)")
    # no argparse choices: a removed format gets a one-line answer saying what to use instead
    p.add_argument("--format", required=True, metavar="onnx", help="export format: onnx")
    p.add_argument("--out", required=True, help="model file to write (.onnx); its metadata goes beside it as .json")
    p.add_argument("--int8", action="store_true",
                   help="int8 static quantization calibrated on the training part of the checkpoint's own corpus and "
                        "split (its run's config.yaml; else FSDD's official training split)")
    p.add_argument("--calibration-clips", type=int, default=200, help="training clips used to calibrate --int8")
    p.add_argument("--max-seconds", type=float, default=10.0,
                   help="fixed input length (s) recorded for fixed-shape runtimes; the graph accepts any length")
    _data_root_argument(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("transcribe", help="turn recordings of several spoken digits into digit strings")
    _files_and_model(p, "audio files (any rate)", "text plus per-word label, score, start/end (s)")
    p.add_argument("--threshold", type=float, default=None,
                   help="words scored lower are printed as '?' (default: spokenword.transcribe.decode.DEFAULT_THRESHOLD)")
    _max_seconds_argument(p, None, "recordings", "3600 s, spokenword.transcribe.decode.TRANSCRIBE_MAX_SECONDS")
    p.add_argument("--segmenter", choices=("speech", "level"), default="speech",
                   help="speech (default): the level and the learned speech detector find the words; level: the level "
                        "alone (for words that are not speech, such as tones)")
    _ensemble_argument(p)
    _reject_argument(p)
    p.set_defaults(func=_cmd_transcribe)

    p = sub.add_parser("figures", help="write the dataset illustrations (waveform, spectrogram, grid, MFCC)")
    _data_root_argument(p)
    p.add_argument("--out", default="figures", help="output folder")
    p.add_argument("--speaker", default="jackson", help="speaker shown in the per-speaker figures")
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser("serve", help="web page and HTTP API (POST /predict) around one model, served by uvicorn")
    p.add_argument("model", nargs="?", default=None,
                   help="checkpoint (.ckpt), exported model (.onnx) or training run folder (its best checkpoint); "
                        "default: the bundled pretrained model")
    p.add_argument("-m", "--model", dest="model_option", default=None, metavar="MODEL", help="the same as MODEL")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="longer clips are refused with 413 (default 10)")
    p.add_argument("--max-upload-mb", type=float, default=5.0, help="larger uploads are refused with 413 (default 5 MB)")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="auto (default): a .ckpt is exported to ONNX at startup and run by ONNX Runtime, or by PyTorch "
                        "when the export extras are missing; onnx: the same, missing extras are an error; torch: PyTorch")
    p.add_argument("--max-batch", type=int, default=None,
                   help="most /predict requests classified in one model call (1: no batching); about the clients "
                        "divided by the cores suits a known load (default and measurements: docs/serving.md, Batching)")
    p.add_argument("--batch-ms", type=float, default=None,
                   help="how long the first request of a batch waits for others, in ms (default: docs/serving.md)")
    p.add_argument("--workers", type=int, default=None,
                   help="server processes on the port, each with its own model (default: one per CPU up to 4 on Linux, "
                        "else 1; 1 with --teach; docs/serving.md, Worker processes)")
    _ensemble_argument(p)
    _reject_argument(p)
    p.add_argument("--teach", default=None, metavar="DIR",
                   help="let the page teach the model new words: takes and taught models are kept in DIR, and with no "
                        "MODEL the last model taught into DIR is served (off by default; docs/serving.md)")
    p.add_argument("--teach-token", default=None, metavar="TOKEN",
                   help="token teach requests must carry (Authorization: Bearer TOKEN); required with --teach beyond "
                        "loopback (default: $SPOKENWORD_TEACH_TOKEN)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("bundle", help="build the bundled pretrained model from training runs (make model; "
                                      "needs the training extra)")
    p.add_argument("run", help="training run folder or checkpoint: the ensemble's first member")
    p.add_argument("--out", required=True, help="folder to write (replaced atomically), e.g. "
                                                "src/spokenword/pretrained/fsdd-digits")
    p.add_argument("--int8", choices=("auto", "never"), default="auto",
                   help="auto: each member int8 when the ensemble's official-split accuracy is not lower with it")
    p.add_argument("--calibration-clips", type=int, default=200, help="training clips used to calibrate int8")
    p.add_argument("--reject-below", type=float, default=None, metavar="SCORE",
                   help="the bundle's word threshold (0-1; stored in its manifest; `python -m benchmarks.accuracy "
                        "ensemble` chooses it by leave-one-speaker-out cross-validation); default: none, the models' "
                        "own best label")
    _data_root_argument(p)
    _ensemble_argument(p)
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("adapt", help="adapt a model to your takes: new words, or its words to your voice (needs the "
                                     "training extra)")
    p.add_argument("paths", nargs="+", metavar="[MODEL] FOLDER",
                   help="the takes (one sub-folder per word, or a labels.csv with path,label columns), after an optional "
                        "model to adapt: a model folder, a training run or checkpoint of the speech-embedding model; "
                        "default the bundled model")
    p.add_argument("--out", required=True, help="the model folder to write (replaced atomically); open it with "
                                                "spokenword classify/evaluate/serve/transcribe OUT")
    p.add_argument("--steps", type=int, default=300, help="training steps of the model's head (default 300)")
    p.add_argument("--views", type=int, default=8, help="views per take: the clean one and augmented ones (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--others", choices=("auto", "drop"), default="auto",
                   help="auto (default): the source ensemble's other members stay when they know exactly the adapted "
                        "words; drop: the adapted model alone")
    _data_root_argument(p)
    p.set_defaults(func=_cmd_adapt)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from spokenword.audio import AudioError
    from spokenword.data.corpora import DatasetError
    from spokenword.inference.base import ModelError  # CheckpointError / ExportError; torch-free

    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from spokenword.training import cli as training

            return training.run(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except SystemExit as exit_:  # argparse / jsonargparse usage errors and --help
        code = exit_.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    except (UsageError, DatasetError, ModelError, AudioError, FileNotFoundError) as err:
        print(f"spokenword: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:  # an optional extra that is not installed
        extra = EXTRAS.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        command = argv[0] if argv else "this command"
        print(f"spokenword: error: spokenword {command} needs {EXTRA_NAMES[extra]} ({err.name} is missing): "
              f"pip install 'spokenword[{extra}]'", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("spokenword: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
