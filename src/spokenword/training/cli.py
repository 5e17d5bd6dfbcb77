"""Training through LightningCLI: ``spokenword fit|validate|test``.

The typed ``__init__`` signatures of :class:`~spokenword.training.task.SpokenWordTask`,
:class:`~spokenword.data.datamodule.AudioDataModule` and the networks are the config schema. The data module
owns the label names, sample rate and feature settings and links them to the model, so a config
names them once. After ``fit`` the best checkpoint is tested and the run folder receives
``report.json`` and the plots (see :mod:`spokenword.training.report`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from spokenword.training.callbacks import ChannelsLast, EpochHistory, ThreadsBesideWorkers
from spokenword.training.checkpointing import BestCheckpoint, ResumeHint, RngState, best_model_path, last_checkpoint, resolve_resume
from spokenword.data.datamodule import AudioDataModule
from spokenword.training.metrics import MONITOR
from spokenword.training.task import SpokenWordTask


class ShortUsageParser(LightningArgumentParser):
    """LightningArgumentParser whose usage errors open with a one-line usage instead of jsonargparse's
    list of every option (about 100 lines above the one that says what is wrong). ``--help`` still
    lists them all."""

    def print_usage(self, file=None) -> None:
        (file or sys.stdout).write(f"usage: {self.prog} [-c CONFIG] [--KEY VALUE ...]\n")

    def error(self, message: str, ex: Exception | None = None):
        super().error(lead_with_reason(message), ex)


_UNION = "Does not validate against any of the Union subtypes"
_NONE = "Expected a <class 'NoneType'>"
_KEY = re.compile(r'Parser key "([^"]+)":')


def lead_with_reason(message: str) -> str:
    """jsonargparse's message for a bad value inside a ``class_path`` block (an optional class: a
    Union with ``None``) opens with "Does not validate against any of the Union subtypes"; the key and
    the reason come 4-6 lines further down. When exactly one subtype other than ``None`` failed, this
    puts ``KEY: REASON`` in front (``model.augment.freq_warp: Expected a <class 'float'>. Got value:
    abc``; ``--model.augment.freq_warp`` is also how the command line names that key) and keeps the
    full message below it, indented. Any other message is returned as it is."""
    lines = message.splitlines()
    if _UNION not in message or "Errors:" not in (line.strip() for line in lines):
        return message
    start = next(i for i, line in enumerate(lines) if line.strip() == "Errors:") + 1
    items: list[list[str]] = []
    indent = None
    for line in lines[start:]:
        text = line.lstrip()
        depth = len(line) - len(text)
        indent = depth if indent is None else indent
        if depth == indent and text.startswith("- "):
            items.append([text[2:]])
        elif depth > indent and items:
            items[-1].append(text)
        else:
            break
    failed = [item for item in items if not item[0].startswith(_NONE)]
    if len(failed) != 1:
        return message
    keys = _KEY.findall(lines[0]) + [key for line in failed[0] for key in _KEY.findall(line)]
    reason = failed[0][-1]
    if not keys or reason.startswith(("- ", "Given value")) or _KEY.fullmatch(reason):
        return message  # a deeper Union, or a shape this does not know: jsonargparse's own message
    return "\n".join([f"{'.'.join(keys)}: {reason}", *("  " + line for line in lines)])


class SpokenWordCLI(LightningCLI):
    """LightningCLI with spokenword's links, defaults and reports."""

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """As LightningCLI's, without its warning when ``args`` and ``sys.argv`` both hold arguments:
        the ``spokenword`` console script passes ``sys.argv[1:]`` on purpose, through ``main(argv)``,
        the entry point tests call in-process."""
        self.config = parser.parse_object(args) if isinstance(args, dict) else parser.parse_args(args)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.sample_rate", "model.sample_rate", apply_on="instantiate")
        parser.link_arguments("data.features", "model.features", apply_on="instantiate")
        parser.link_arguments("data.labels", "model.labels", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.net.init_args.num_classes", apply_on="instantiate")
        parser.add_argument("--report", type=bool, default=True, help="write report.json and plots after fit/test")

    #: model arguments filled from the data module by the links above, so not options of their own
    LINKED = ("labels", "sample_rate", "features")

    def _parse_ckpt_path(self) -> None:
        """As LightningCLI's (the checkpoint's hyperparameters become the model's config), minus the
        linked values, which LightningCLI's own version rejects as unknown options; an older
        checkpoint's hyperparameters are migrated first (:func:`spokenword.inference.checkpoint.migrate`)."""
        from spokenword.inference.checkpoint import migrate

        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        checkpoint = migrate(torch.load(ckpt_path, weights_only=True, map_location="cpu"), ckpt_path)
        hparams = dict(checkpoint.get("hyper_parameters", {}))
        for key in ("_instantiator", *self.LINKED):
            hparams.pop(key, None)
        net = hparams.get("net")
        if isinstance(net, dict) and isinstance(net.get("init_args"), dict):
            net["init_args"] = {k: v for k, v in net["init_args"].items() if k != "num_classes"}
        if hparams:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def before_instantiate_classes(self) -> None:
        """Resolve ``--ckpt_path last`` (fit), reject a checkpoint that is not spokenword's before any data
        is prepared, and train in float32 where bfloat16 would be emulated (:func:`cpu_precision`)."""
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        notice = cpu_precision(config)
        if notice:
            print(notice, file=sys.stderr)
        if self.subcommand == "fit":
            resolve_resume(config)
            problem = open_schedule_problem(config)
            if problem:
                self.parser.error(problem)  # a usage message and exit 2, like a config typo
        ckpt = config.get("ckpt_path")
        if ckpt and ckpt not in _CKPT_KEYWORDS:
            from spokenword.inference.checkpoint import load_task

            load_task(ckpt)  # raises CheckpointError naming the file and the problem

    def instantiate_classes(self) -> None:
        """As LightningCLI's, but a value that a constructor refuses (``ValueError``: a feature size, a
        probability out of range, an unknown split) is a usage message and exit 2, like a typo in an
        option's name, not a traceback. Constructors only check and store (no data is read here)."""
        try:
            super().instantiate_classes()
        except ValueError as err:
            self.parser.error(f"invalid configuration: {err}")

    def after_fit(self) -> None:
        if self.trainer.interrupted or not self.config[self.subcommand].get("report", True):
            return
        best = best_model_path(self.trainer.checkpoint_callbacks)
        history = next((c for c in self.trainer.callbacks if isinstance(c, EpochHistory)), None)
        kept = history.state_dict() if history else None
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best, verbose=False)
        if history and kept:  # testing restores the best checkpoint's (earlier) callback state
            history.load_state_dict(kept)
        self._write_report(best)

    def after_test(self) -> None:
        if self.config[self.subcommand].get("report", True):
            self._write_report(self.config[self.subcommand].get("ckpt_path"))

    def _write_report(self, checkpoint: str | None) -> None:
        from spokenword.training import provenance
        from spokenword.training import report

        run_dir = Path(self.trainer.log_dir or ".")  # a collective under DDP: every process asks
        if not self.trainer.is_global_zero:  # under DDP every process tests (metrics sync); one writes
            return
        history = next((c for c in self.trainer.callbacks if isinstance(c, EpochHistory)), None)
        if self.subcommand == "test" and checkpoint:
            run_dir = Path(checkpoint).resolve().parent.parent
        result = report.build(self.trainer, self.model, self.datamodule, history, checkpoint)
        result["provenance"] = provenance.collect(self.datamodule, self.model)
        threads = next((c.fit_threads for c in self.trainer.callbacks if isinstance(c, ThreadsBesideWorkers) and c.fit_threads), None)
        if threads and self.subcommand == "fit":  # the count training ran with, not the restored one
            result["torch_threads"] = result["provenance"]["cpu"]["threads"] = threads
        if self.subcommand == "fit":  # what it trained in (cpu_precision may have changed the config's)
            result["provenance"]["precision"] = str(self.trainer.precision)
        provenance.write(result["provenance"], run_dir)
        report.write(result, run_dir)
        print(report.summary(result, run_dir))


#: trainer precisions that compute in bfloat16
BF16_PRECISIONS = ("bf16-mixed", "bf16-true", "bf16")


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN computes bfloat16 in hardware on this CPU (AVX512 and newer). Elsewhere (AVX2 CPUs)
    PyTorch emulates it, several times slower than float32 (``python -m benchmarks.speed model``)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # PyTorch's own check; it has no public one
    except (AttributeError, RuntimeError):
        return False  # unknown: float32 is never the slow choice by much


def on_cpu(accelerator) -> bool:
    """Whether a trainer with ``accelerator`` (``"auto"``, ``"cpu"``, ``"gpu"``, ... or an instance) computes on the CPU."""
    if isinstance(accelerator, str):
        if accelerator == "auto":
            mps = getattr(torch.backends, "mps", None)
            return not torch.cuda.is_available() and not (mps is not None and mps.is_available())
        return accelerator == "cpu"
    return isinstance(accelerator, CPUAccelerator)


def cpu_precision(config) -> str | None:
    """The notice when ``config``'s bfloat16 ``trainer.precision`` would run emulated on this CPU, after
    setting it to ``32-true`` (the configs' bf16 is a speed choice: the same accuracy within seed noise);
    ``None`` when nothing changes."""
    precision = str(config.get("trainer.precision") or "")
    if precision not in BF16_PRECISIONS or not on_cpu(config.get("trainer.accelerator") or "auto") or cpu_has_native_bf16():
        return None
    config["trainer.precision"] = "32-true"
    return (f"spokenword: trainer.precision {precision} -> 32-true: this CPU has no bfloat16 hardware, where "
            "PyTorch emulates it several times slower than float32 (docs/training.md, Speed on CPU)")


def open_schedule_problem(config) -> str | None:
    """What is wrong when a scheduler's length is left to the run (``total_steps`` unset, see
    :meth:`SpokenWordTask._scheduler`) and the run has none in the scheduler's unit (no epoch
    limit, and for ``scheduler_interval: step`` no ``max_steps`` either); ``None`` when nothing
    is. Checked before any data is prepared, so the mistake is a usage message, not a traceback
    from inside ``fit``."""
    scheduler = config.get("model.lr_scheduler")
    init_args = scheduler.get("init_args") if scheduler is not None and hasattr(scheduler, "get") else None
    if init_args is None or "total_steps" not in init_args or init_args.get("total_steps") is not None:
        return None
    if init_args.get("epochs") is not None:
        return None
    max_epochs, max_steps = config.get("trainer.max_epochs"), config.get("trainer.max_steps")
    has_steps = max_steps is not None and max_steps > 0
    if max_epochs is None:  # Lightning: 1000 epochs, or no epoch limit when max_steps is set
        max_epochs = -1 if has_steps else 1000
    if max_epochs > 0 or (has_steps and config.get("model.scheduler_interval") == "step"):
        return None
    if config.get("model.scheduler_interval") == "step":
        return ("model.lr_scheduler.init_args.total_steps is unset and the run has no fixed length "
                "(trainer.max_epochs: -1, no trainer.max_steps): set total_steps, max_epochs or max_steps")
    return ("model.lr_scheduler.init_args.total_steps is unset and the run has no epoch limit, which "
            "scheduler_interval: epoch counts in: set total_steps or trainer.max_epochs")


def trainer_defaults() -> dict:
    return {
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": "spokenword"}},
        "callbacks": [
            BestCheckpoint(monitor=MONITOR, mode="max"),  # what ``after_fit`` tests, unless a config adds its own (best_model_path)
            last_checkpoint(),
            EpochHistory(),
            RngState(),
            ResumeHint(),
            ChannelsLast(),
            ThreadsBesideWorkers(),
        ],
        "plugins": [{"class_path": "spokenword.training.checkpointing.AtomicCheckpointIO"}],
        "deterministic": True,
        "accelerator": "auto",
        "devices": 1,
    }


def run(argv: list[str]) -> int:
    """Run a LightningCLI subcommand (``fit``, ``validate``, ``test``) with ``argv``.

    ``test``/``validate`` given ``--ckpt_path RUN/checkpoints/X.ckpt`` and no ``--config`` use the
    run's ``RUN/config.yaml``. Returns 130 when fit is stopped with Ctrl-C (after printing how to
    resume, see :class:`~spokenword.training.checkpointing.ResumeHint`).
    """
    argv = _with_run_config(list(argv))
    ckpt = _ckpt_argument(argv)
    if ckpt and ckpt not in _CKPT_KEYWORDS:  # before LightningCLI reads its hyperparameters
        from spokenword.inference.checkpoint import load_task

        load_task(ckpt)  # raises CheckpointError naming the file and the problem
    defaults = trainer_defaults()
    hint = next(c for c in defaults["callbacks"] if isinstance(c, ResumeHint))
    try:
        SpokenWordCLI(
            SpokenWordTask,
            AudioDataModule,
            seed_everything_default=0,
            trainer_defaults=defaults,
            save_config_kwargs={"overwrite": True},
            args=argv,
            parser_class=ShortUsageParser,
            auto_configure_optimizers=False,
        )
    except SystemExit:
        if hint.interrupted:
            return 130
        raise
    return 0


def _with_run_config(argv: list[str]) -> list[str]:
    if not argv or argv[0] not in ("test", "validate"):
        return argv
    if any(a in ("-c", "--config") or a.startswith("--config=") for a in argv) or any(a in ("-h", "--help") for a in argv):
        return argv
    ckpt = _ckpt_argument(argv)
    if not ckpt:
        return argv
    config = Path(ckpt).resolve().parent.parent / "config.yaml"
    return [argv[0], "--config", str(config), *argv[1:]] if config.is_file() else argv


_CKPT_KEYWORDS = ("best", "last", "hpc", "registry")


def _ckpt_argument(argv: list[str]) -> str | None:
    """The value of ``--ckpt_path`` in ``argv`` (``None`` when absent)."""
    ckpt = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--ckpt_path"), None)
    return ckpt or next((a.split("=", 1)[1] for a in argv if a.startswith("--ckpt_path=")), None)
