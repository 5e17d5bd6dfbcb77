"""Teach the served model new words from the web page: takes kept on the server, adaptation in a
background thread, and the served model replaced by the adapted one when it is ready.

Off unless the app is made with a :class:`TeachSettings` (``spokenword serve --teach DIR``): it changes
what the server answers, so beyond loopback it also needs a token (``--teach-token`` or
``$SPOKENWORD_TEACH_TOKEN``), sent as ``Authorization: Bearer TOKEN`` and compared in constant time.

The teach folder ``DIR``:

* ``words/labels.csv``: the takes, one row ``path,label`` each (``label``: the word as typed); the labelled
  folder :func:`spokenword.training.adapt.adapt` reads (:func:`spokenword.data.corpora.folder.scan`);
* ``words/<id>/<take>.wav``: each take, 16-bit mono at the served model's rate, as the server decoded it
  (never the uploaded bytes). ``<id>`` is a slug of the word plus a hash of it, so no name as typed ever
  becomes a path; ``<take>`` is random hex;
* ``models/<n>``: the last taught model folder (older ones are removed once the next one is served);
  ``spokenword serve --teach DIR`` without a model serves it again after a restart.

Every file is written to a temporary name in its folder and renamed into place. One server per folder (:func:`claim`).

Routes (all JSON; mistakes are 4xx with ``{"detail": "..."}``):

* ``GET /teach``: ``{enabled, token_required, authorized, can_train, words, limits, training, model, base}``;
* ``POST /teach/words/{name}/takes``: add a take of ``name`` (the raw file as the body, or the multipart
  field ``file``); 201 with the word and the take;
* ``GET /teach/words/{id}/takes/{take}``: the stored take (audio/wav), for playback;
* ``DELETE /teach/words/{id}/takes/{take}``, ``DELETE /teach/words/{id}``: remove a take, a word;
* ``POST /teach/train``: start adapting (202); 409 while a training runs (never two at once);
* ``GET /teach/train``: the training's progress.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from starlette.convertors import Convertor, register_url_convertor

from spokenword.audio import AudioError, TooLongError
from spokenword.inference.base import ModelError
from spokenword.labels import REJECTIONS
from spokenword.serve.uploads import _audio_bytes, peak_dbfs

logger = logging.getLogger("spokenword.serve")

#: hosts that only this machine can reach: teaching there needs no token
LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: the environment variable that may hold the token instead of ``--teach-token``
TOKEN_ENV = "SPOKENWORD_TEACH_TOKEN"
MANIFEST = "labels.csv"
NEEDS_TRAIN_EXTRA = "teaching needs the training extra: pip install 'spokenword[train]'"
#: characters a word may hold besides letters and digits (it is a label: shown, never a path)
NAME_PUNCTUATION = " -'_"
_WORD_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")
_TAKE_ID = re.compile(r"[0-9a-f]{12}")
_OPENING = re.compile(r"Error opening <[^>]*>: ")
#: share of the progress bar each stage of a training takes (``adapt``'s stages, then loading the result)
_STAGES = {"preparing": (0.0, 0.02), "features": (0.02, 0.25), "rehearsal": (0.02, 0.25), "training": (0.25, 0.85),
           "export": (0.85, 0.95), "loading": (0.95, 0.99), "done": (1.0, 1.0)}


class _AnyText(Convertor):
    """A path parameter that may hold anything, newlines too (Starlette's ``path`` stops at one), so a bad
    name reaches :func:`check_name` and is answered with the reason instead of a bare 404."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("teach_text", _AnyText())


class TeachError(ValueError):
    """A teach setting that cannot work (no token beyond loopback, an unusable folder): one line."""


@dataclass(frozen=True)
class TeachSettings:
    """Where takes and taught models go, and the limits.

    Args:
        folder: the teach folder (created when missing).
        token: required as ``Authorization: Bearer TOKEN`` on every teach request when set.
        max_words: words kept at once.
        max_takes: takes per word.
        min_takes: takes each word needs before training.
        max_upload_bytes: bytes per uploaded take.
        max_clip_seconds: longest take (s); longer ones are refused, never decoded past it.
        min_clip_seconds: shortest take (s).
        silence_dbfs: a take whose loudest sample is below this (dB full scale) is refused as silent.
        max_name_length: characters in a word's name.
        source: the model to adapt: a model folder, run folder or ``.ckpt`` (None: the bundled model).
        reject_below: the taught model's word threshold (None: its manifest's).
        steps: ``adapt``'s training steps (None: its default).
        adapt_options: more keyword arguments for :func:`~spokenword.training.adapt.adapt`.
    """

    folder: Path
    token: str | None = None
    max_words: int = 20
    max_takes: int = 20
    min_takes: int = 3
    max_upload_bytes: int = 2_000_000
    max_clip_seconds: float = 5.0
    min_clip_seconds: float = 0.1
    silence_dbfs: float = -40.0
    max_name_length: int = 32
    source: str | None = None
    reject_below: float | None = None
    steps: int | None = None
    adapt_options: tuple[tuple[str, object], ...] = ()

    def limits(self) -> dict:
        keys = ("max_words", "max_takes", "min_takes", "max_upload_bytes", "max_clip_seconds", "min_clip_seconds",
                "silence_dbfs", "max_name_length")
        return {k: getattr(self, k) for k in keys}


def check_host(host: str, token: str | None) -> None:
    """:class:`TeachError` when teaching would be open to the network without a token."""
    if host.strip("[]") not in LOOPBACK and not token:
        raise TeachError(f"--teach on {host} (beyond this machine) needs a token: pass --teach-token TOKEN or set "
                         f"{TOKEN_ENV}, or serve on 127.0.0.1")


#: the teach folder's owner: the process id of the server that uses it
OWNER = ".server.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, owned by someone else
    return True


def claim(folder: Path) -> None:
    """Make this process the teach folder's one server (``OWNER`` holds its pid), or :class:`TeachError` when
    another live process holds it: two servers would clean up and rename each other's files. A pid file left
    by a server that is gone is taken over. Hand-written because the check must work wherever the server runs;
    an OS file lock (fcntl) is POSIX only."""
    path = Path(folder) / OWNER
    try:
        holder = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        holder = 0
    if holder and holder != os.getpid() and _alive(holder):
        raise TeachError(f"{folder} is the teach folder of another running spokenword server (process {holder}); "
                         "give each server its own --teach folder, or stop that one")
    _replace_atomically(path, lambda f: f.write(f"{os.getpid()}\n".encode()))


def loopback_host(request: Request) -> bool:
    """Whether the request's ``Host`` names this machine: without a token, teaching answers only those, so a
    site whose name is made to resolve to 127.0.0.1 (DNS rebinding) cannot drive it from a browser."""
    host = request.headers.get("host", "")
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    return name in LOOPBACK


def latest_model(folder: str | os.PathLike) -> Path | None:
    """The last model taught into the teach folder ``folder`` (``models/<n>`` with the highest ``n``), or None."""
    models = Path(folder) / "models"
    numbered = sorted((p for p in models.glob("*") if p.name.isdigit() and (p / "manifest.json").is_file()),
                      key=lambda p: int(p.name)) if models.is_dir() else []
    return numbered[-1] if numbered else None


# -- names ---------------------------------------------------------------------------------------------

def _shown(text: str, limit: int = 40) -> str:
    """``text`` safe to quote in a one-line message: escapes for what is not printable, cut to ``limit``."""
    quoted = ascii(text[:limit]) if not text.isprintable() else repr(text[:limit])
    return quoted + ("..." if len(text) > limit else "")


def check_name(raw: str, max_length: int = 32) -> str:
    """The word ``raw`` names (NFC, spaces collapsed), or a 422 that says what is wrong and what to type."""
    name = unicodedata.normalize("NFC", raw)
    control = next((c for c in name if unicodedata.category(c).startswith("C")), None)
    if control is not None:
        raise HTTPException(422, f"the word name holds a control character (U+{ord(control):04X}); "
                                 "type the word with letters and digits")
    name = " ".join(name.split())
    if not name:
        raise HTTPException(422, "the word name is empty; type the word you will say, e.g. 'hello'")
    if len(name) > max_length:
        raise HTTPException(422, f"the word name is {len(name)} characters long; the limit is {max_length}")
    if name.casefold() in {r.casefold() for r in REJECTIONS}:
        raise HTTPException(422, f"{_shown(name)} is reserved for the model's 'not a word' answers; choose another name")
    other = next((c for c in name if not (c.isalnum() or c in NAME_PUNCTUATION)), None)
    if other is not None:
        raise HTTPException(422, f"a word name may hold letters, digits, spaces, - ' and _, not {_shown(other)}; "
                                 "type the word as it is spoken, e.g. 'hello'")
    if name.startswith("_"):
        raise HTTPException(422, f"{_shown(name)}: names starting with _ are reserved for the model's own labels; "
                                 "drop the leading _")
    if not any(c.isalnum() for c in name):
        raise HTTPException(422, f"{_shown(name)} holds no letter or digit; type the word you will say")
    return name


def word_id(name: str) -> str:
    """The folder name of the word ``name``: an ASCII slug of it and a hash of its case-folded form (names
    that differ only in case are one word)."""
    key = name.casefold()
    slug = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", slug).strip("-")[:20].strip("-")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"w-{digest}"


# -- the takes on disk ---------------------------------------------------------------------------------

@dataclass
class Take:
    word: str  # the word's id (its folder)
    take: str  # the take's id (its file stem)
    label: str  # the word as typed
    seconds: float

    @property
    def path(self) -> str:
        return f"{self.word}/{self.take}.wav"


def _manifest_text(takes: list[Take]) -> str:
    """``labels.csv`` of ``takes``: ``path,label`` rows, paths relative to the ``words`` folder."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "label"])
    writer.writerows([t.path, t.label] for t in takes)
    return out.getvalue()


def _replace_atomically(path: Path, write: Callable[[object], None], suffix: str = "") -> None:
    """Write ``path`` through ``write(binary file)`` into a temporary file beside it, then rename it into place."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_tree(path: Path) -> None:
    """Rename ``path`` aside first, so a crash halfway never leaves a half-deleted folder under its name."""
    if not path.exists():
        return
    aside = path.with_name(f".deleted-{path.name}-{secrets.token_hex(4)}")
    os.replace(path, aside)
    shutil.rmtree(aside, ignore_errors=True)


class TakeStore:
    """The takes of the teach folder: ``words/labels.csv`` and the wav files it names (see module docstring).
    Thread-safe; the manifest is the truth, a file it does not name is never served or trained on."""

    def __init__(self, folder: Path):
        self.root = Path(folder) / "words"
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest = self.root / MANIFEST
        self.lock = threading.Lock()
        self.takes: list[Take] = self._read()

    def _read(self) -> list[Take]:
        for leftover in [*self.root.glob(".*"), *self.root.glob("*/.*")]:  # an interrupted write's or delete's
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        if not self.manifest.is_file():
            return []
        try:
            with open(self.manifest, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise TeachError(f"{self.manifest}: unreadable ({err}); move the teach folder aside or remove the file") from None
        takes, dropped = [], 0
        for row in rows:
            parts = (row.get("path") or "").split("/")
            label = row.get("label") or ""
            if (len(parts) != 2 or not _WORD_ID.fullmatch(parts[0]) or not parts[1].endswith(".wav")
                    or not _TAKE_ID.fullmatch(parts[1][:-4]) or not label):
                dropped += 1
                continue
            path = self.root / parts[0] / parts[1]
            try:
                info = sf.info(str(path))
            except (OSError, RuntimeError, sf.LibsndfileError):
                dropped += 1
                continue
            takes.append(Take(parts[0], parts[1][:-4], label, round(info.frames / info.samplerate, 3)))
        if dropped:
            logger.warning("%s: %d rows name no usable take; they are left out", self.manifest, dropped)
            self._write(takes)
        return takes

    def _write(self, takes: list[Take]) -> None:
        _replace_atomically(self.manifest, lambda f: f.write(_manifest_text(takes).encode("utf-8")), ".csv")

    def words(self) -> list[dict]:
        """``[{id, name, takes: [{id, seconds}]}]`` in the order they were first recorded."""
        with self.lock:
            takes = list(self.takes)
        words: dict[str, dict] = {}
        for t in takes:
            words.setdefault(t.word, {"id": t.word, "name": t.label, "takes": []})["takes"].append(
                {"id": t.take, "seconds": t.seconds})
        return list(words.values())

    def add(self, name: str, wave: np.ndarray, rate: int, settings: TeachSettings) -> tuple[dict, dict]:
        """Store ``wave`` (float32 mono at ``rate``) as a take of ``name``; 409 past the limits."""
        wid = word_id(name)
        with self.lock:
            mine = [t for t in self.takes if t.word == wid]
            if mine and mine[0].label.casefold() != name.casefold():  # two names whose slugs and hashes meet
                raise HTTPException(409, f"{_shown(name)} clashes with the word {_shown(mine[0].label)}; choose another name")
            words = {t.word for t in self.takes}
            if not mine and len(words) >= settings.max_words:
                raise HTTPException(409, f"there are {len(words)} words already, the limit; delete one before adding "
                                         f"{_shown(name)}")
            if len(mine) >= settings.max_takes:
                raise HTTPException(409, f"{_shown(mine[0].label)} has {len(mine)} takes, the limit; delete one to "
                                         "record another")
            label = mine[0].label if mine else name  # the first spelling stays the word's name
            take = Take(wid, secrets.token_hex(6), label, round(len(wave) / rate, 3))
            folder = self.root / wid
            folder.mkdir(exist_ok=True)
            pcm = np.clip(wave, -1.0, 1.0)  # 16-bit PCM: anything past full scale would wrap around
            _replace_atomically(folder / f"{take.take}.wav",
                                lambda f: sf.write(f, pcm, rate, subtype="PCM_16", format="WAV"), ".wav")
            self.takes.append(take)
            try:
                self._write(self.takes)
            except BaseException:
                self.takes.remove(take)
                (folder / f"{take.take}.wav").unlink(missing_ok=True)
                raise
        word = next(w for w in self.words() if w["id"] == wid)
        return word, {"id": take.take, "seconds": take.seconds}

    def find(self, word: str, take: str | None = None) -> list[Take]:
        """The takes of ``word`` (its id, or its name), or just ``take``; 404 when there are none."""
        with self.lock:
            takes = [t for t in self.takes if t.word == word] or [t for t in self.takes if t.label.casefold() == word.casefold()]
        if not takes:
            raise HTTPException(404, f"no word {_shown(word)} here; GET /teach lists the words and their ids")
        if take is not None:
            takes = [t for t in takes if t.take == take]
            if not takes:
                raise HTTPException(404, f"no take {_shown(take)} of {_shown(word)}; GET /teach lists the takes")
        return takes

    def file(self, take: Take) -> Path:
        return self.root / take.word / f"{take.take}.wav"

    def remove(self, doomed: list[Take]) -> None:
        """Drop ``doomed`` from the manifest first, then their files (and a word's folder once it is empty)."""
        with self.lock:
            keep = [t for t in self.takes if t not in doomed]
            self._write(keep)
            self.takes = keep
            for take in doomed:
                self.file(take).unlink(missing_ok=True)
            for wid in {t.word for t in doomed} - {t.word for t in keep}:
                _remove_tree(self.root / wid)

    def snapshot(self, dest: Path) -> dict[str, int]:
        """A labelled folder at ``dest`` holding the takes as they are now (hard links where the file system
        allows), so that training reads a fixed set while the page goes on adding and deleting takes;
        returns the takes per word."""
        with self.lock:
            takes = list(self.takes)
            for t in takes:
                (dest / t.word).mkdir(parents=True, exist_ok=True)
                try:
                    os.link(self.file(t), dest / t.path)
                except OSError:
                    shutil.copyfile(self.file(t), dest / t.path)
        (dest / MANIFEST).write_bytes(_manifest_text(takes).encode("utf-8"))
        counts: dict[str, int] = {}
        for t in takes:
            counts[t.label] = counts.get(t.label, 0) + 1
        return counts


# -- training ------------------------------------------------------------------------------------------

@dataclass
class TrainingStatus:
    """What ``GET /teach/train`` says: ``state`` idle, running, done or failed."""

    state: str = "idle"
    stage: str | None = None
    fraction: float = 0.0  # of the stage
    progress: float = 0.0  # of the whole training
    detail: str | None = None
    words: dict | None = None  # takes per word trained on
    labels: list | None = None  # the taught model's labels, once it is served
    model: str | None = None
    seconds: float | None = None


class Trainer:
    """Runs one adaptation at a time in a thread and swaps the served model when it is ready."""

    def __init__(self, app: FastAPI, store: TakeStore, settings: TeachSettings, max_seconds: float | None,
                 swap: Callable[[FastAPI, object, str | None], None]):
        self.app, self.store, self.settings, self.max_seconds = app, store, settings, max_seconds
        self.swap = swap  # spokenword.serve.app.swap_model, handed in: this module does not import the app
        self.folder = Path(settings.folder)
        self.models = self.folder / "models"
        self.models.mkdir(parents=True, exist_ok=True)
        claim(self.folder)  # before the clean-up below: another server's training must not lose its files
        for leftover in [*self.models.glob(".*"), *self.folder.glob(".train-*")]:  # an interrupted training's
            shutil.rmtree(leftover, ignore_errors=True)
        self.source = settings.source
        self.lock = threading.Lock()
        self.status = TrainingStatus()
        self.started = 0.0
        self.thread: threading.Thread | None = None
        self._adapt = None  # spokenword.training.adapt.adapt, imported on first use: it brings torch

    def adapt_module(self):
        """:func:`~spokenword.training.adapt.adapt`, or the 503 that says the training extra is missing."""
        if self._adapt is None:
            try:
                from spokenword.training.adapt import adapt
            except ImportError as err:
                logger.warning("teaching cannot train: %s", " ".join(str(err).split()))
                raise HTTPException(503, NEEDS_TRAIN_EXTRA) from None
            self._adapt = adapt
        return self._adapt

    def snapshot(self) -> dict:
        with self.lock:
            status = asdict(self.status)
            if self.status.state == "running":
                status["seconds"] = round(time.monotonic() - self.started, 1)
            return status

    def start(self) -> dict:
        """Start a training (202's body), or 409 while one runs, 422 when the takes do not allow one."""
        self.adapt_module()
        words = self.store.words()
        if not words:
            raise HTTPException(422, f"nothing to teach yet: record at least {self.settings.min_takes} takes of a word")
        short = [w for w in words if len(w["takes"]) < self.settings.min_takes]
        if short:
            listed = ", ".join(f"{_shown(w['name'])} has {len(w['takes'])}" for w in short[:3])
            raise HTTPException(422, f"each word needs at least {self.settings.min_takes} takes before training "
                                     f"({listed}); record more or delete the word")
        with self.lock:
            if self.status.state == "running":
                raise HTTPException(409, f"a training is running already ({self.status.stage}, "
                                         f"{100 * self.status.progress:.0f}%); wait for it to finish")
            work = Path(tempfile.mkdtemp(dir=self.folder, prefix=".train-"))
            try:
                counts = self.store.snapshot(work / "words")
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
            self.status = TrainingStatus(state="running", stage="preparing", words=counts)
            self.started = time.monotonic()
            self.thread = threading.Thread(target=self._run, args=(work,), name="spokenword-teach", daemon=True)
            self.thread.start()
            return asdict(self.status)

    def _progress(self, stage: str, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        with self.lock:
            low, high = _STAGES.get(stage, (self.status.progress, self.status.progress))  # a stage adapt may add
            self.status.stage, self.status.fraction = stage, round(fraction, 3)
            self.status.progress = round(max(self.status.progress, low + (high - low) * fraction), 3)

    def _next_out(self) -> Path:
        numbers = [int(p.name) for p in self.models.iterdir() if p.name.isdigit()]
        return self.models / str(max(numbers, default=0) + 1)

    def _run(self, work: Path) -> None:
        adapt = self._adapt
        out = self._next_out()
        try:
            seen: set[str] = set()

            def progress(stage: str, fraction: float) -> None:
                seen.add(stage)
                self._progress(stage, fraction)

            options = dict(self.settings.adapt_options)
            if self.settings.steps is not None:
                options["steps"] = self.settings.steps
            def log(line: str) -> None:
                logger.info("teach: %s", line)

            try:
                adapt(self.source, work / "words", out, progress=progress, log=log, **options)
            except ModelError as err:  # AdaptError, or a checkpoint that does not load at all
                if self.source is None or "features" in seen:  # the takes' problem, not the source's
                    raise
                logger.warning("teach: %s cannot be adapted (%s); teaching the bundled model instead", self.source, err)
                self.source = None
                adapt(None, work / "words", out, progress=progress, log=log, **options)
            self._progress("loading", 0.0)
            from spokenword.inference.load import load_model

            classifier = load_model(out, max_seconds=self.max_seconds, threads=1, reject_below=self.settings.reject_below)
            self.swap(self.app, classifier, str(out))
            logger.info("teach: now serving %s (%s)", out, ", ".join(classifier.labels))
            try:
                self._prune(keep=out)
            except OSError as err:  # the new model is served: an old folder left behind is only untidy
                logger.warning("teach: could not remove an older taught model (%s)", err)
            with self.lock:
                self.status.state, self.status.stage, self.status.fraction, self.status.progress = "done", "done", 1.0, 1.0
                self.status.labels, self.status.model = list(classifier.labels), out.name
        except Exception as err:  # noqa: BLE001 - any failure ends this training, never the server
            if isinstance(err, ModelError):
                detail = " ".join(str(err).split())
            else:
                logger.exception("teach: training failed")
                detail = f"server error ({type(err).__name__}) while training; the server log says more"
            if out.exists() and getattr(self.app.state, "model_name", None) != str(out):
                _remove_tree(out)  # never served: a restart must not pick it up
            with self.lock:
                self.status.state, self.status.detail = "failed", detail
        finally:
            with self.lock:
                self.status.seconds = round(time.monotonic() - self.started, 1)
            shutil.rmtree(work, ignore_errors=True)

    def _prune(self, keep: Path) -> None:
        """Remove the taught models before ``keep``, except the one training starts from."""
        source = Path(self.source).resolve() if self.source else None
        for path in self.models.iterdir():
            if path.name.isdigit() and path != keep and int(path.name) < int(keep.name) and path.resolve() != source:
                _remove_tree(path)


# -- the routes ----------------------------------------------------------------------------------------

def teach_router(app: FastAPI, settings: TeachSettings | None, *, max_seconds: float | None = None,
                 swap: Callable[[FastAPI, object, str | None], None]) -> APIRouter:
    """The ``/teach`` routes of ``app`` (see module docstring); with ``settings`` None, only ``GET /teach``
    (``{"enabled": false}``), and every other ``/teach`` path is 404 with the flag that turns it on."""
    router = APIRouter(tags=["teach"])
    if settings is None:
        off = "teaching is off: start the server with spokenword serve --teach DIR"

        @router.get("/teach", summary="Teaching: off")
        def teach_off() -> dict:
            return {"enabled": False, "detail": off}

        @router.api_route("/teach/{rest:teach_text}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
        def teach_off_routes(rest: str) -> None:
            raise HTTPException(404, off)

        return router

    Path(settings.folder).mkdir(parents=True, exist_ok=True)
    store = TakeStore(settings.folder)
    trainer = Trainer(app, store, settings, max_seconds, swap)
    app.state.teach = trainer

    def authorized(request: Request) -> bool:
        if settings.token is None:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), settings.token.encode())

    def guard(request: Request) -> None:
        """401/403 without the token; 403 for a request another site's page sent (a browser names its origin),
        and, without a token, for one that names a host other than this machine's."""
        if settings.token is None and not loopback_host(request):
            raise HTTPException(403, f"teaching without a token answers only this machine's addresses (the request "
                                     f"names host {_shown(request.headers.get('host', ''))}): open the page at "
                                     "http://127.0.0.1:PORT/, or start the server with --teach-token")
        if settings.token is not None and not authorized(request):
            if not request.headers.get("authorization"):
                raise HTTPException(401, "teaching needs the server's token: send Authorization: Bearer TOKEN "
                                         "(the --teach-token it was started with)", headers={"WWW-Authenticate": "Bearer"})
            raise HTTPException(403, "wrong teach token: send the --teach-token the server was started with")
        origin = request.headers.get("origin")
        if request.method != "GET" and origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "teaching requests from another site's page are refused; use this server's page")

    def take_url(wid: str, take: str) -> str:
        return f"/teach/words/{wid}/takes/{take}"

    def words_now() -> list[dict]:
        known = set(app.state.classifier.labels)
        words = store.words()
        for w in words:
            w["known"] = w["name"] in known  # the served model has it already
            for t in w["takes"]:
                t["url"] = take_url(w["id"], t["id"])
        return words

    def training_detail() -> str | None:
        try:
            trainer.adapt_module()
        except HTTPException as err:
            return err.detail
        return None

    @router.get("/teach", summary="Teaching: words, takes, limits and training")
    async def teach_state(request: Request) -> dict:
        """``token_required``/``authorized``: without the token only those are sent. ``can_train`` is false (with
        ``detail``) where the training extra is missing."""
        if not authorized(request):
            return {"enabled": True, "token_required": True, "authorized": False,
                    "detail": "send the teach token as Authorization: Bearer TOKEN"}
        if settings.token is None and not loopback_host(request):
            return {"enabled": True, "token_required": True, "authorized": False,
                    "detail": "teaching without a token answers only http://127.0.0.1:PORT/ and http://localhost:PORT/"}
        detail = await run_in_threadpool(training_detail)  # the first call imports torch
        classifier = app.state.classifier
        return {"enabled": True, "token_required": settings.token is not None, "authorized": True,
                "can_train": detail is None, "detail": detail, "words": words_now(), "limits": settings.limits(),
                "training": trainer.snapshot(),
                "model": {"name": app.state.model_name, "labels": list(classifier.labels)},
                "base": trainer.source or "the bundled model"}

    def decode_take(data: bytes, shown: str) -> tuple[np.ndarray, int]:
        """The take decoded by the served model's own decoder, or the 413/422 that says why it is refused."""
        classifier = app.state.classifier
        rate = int(classifier.sample_rate)
        try:
            wave = classifier.waveform(data, max_seconds=settings.max_clip_seconds)
        except TooLongError as err:
            length = f"{err.seconds:.1f} s long" if err.seconds is not None else "longer than that"
            raise HTTPException(413, f"{shown}: the take is {length}; the limit is {settings.max_clip_seconds:g} s: "
                                     "record just the word") from None
        except AudioError as err:
            problem = _OPENING.sub("", err.problem)
            raise HTTPException(422, f"{shown}: {problem}; send a wav, flac or ogg file") from None
        seconds = len(wave) / rate
        if len(wave) > settings.max_clip_seconds * rate + 1:  # resampling may add a sample
            raise HTTPException(413, f"{shown}: the take is {seconds:.1f} s long; the limit is "
                                     f"{settings.max_clip_seconds:g} s: record just the word")
        if seconds < settings.min_clip_seconds:
            raise HTTPException(422, f"{shown}: the take is {seconds:.2f} s long, too short; the shortest is "
                                     f"{settings.min_clip_seconds:g} s: record the whole word")
        level = peak_dbfs(wave)
        if level < settings.silence_dbfs:
            heard = f"its loudest sample is {level:.0f} dBFS" if np.isfinite(level) else "every sample is zero"
            raise HTTPException(422, f"{shown}: the take is silent ({heard}; it needs a peak above "
                                     f"{settings.silence_dbfs:g} dBFS); speak closer to the microphone and record it again")
        return wave, rate

    @router.post("/teach/words/{name:teach_text}/takes", status_code=201, summary="Add a take of a word")
    async def add_take(name: str, request: Request) -> JSONResponse:
        """The audio as the raw body or the multipart field ``file``; stored as 16-bit wav after decoding."""
        guard(request)
        word = check_name(name, settings.max_name_length)
        await run_in_threadpool(trainer.adapt_module)
        data, filename = await _audio_bytes(request, settings.max_upload_bytes)
        shown = filename if filename.isprintable() else _shown(filename)  # the client's name for it: one line
        wave, rate = await run_in_threadpool(decode_take, data, shown)
        entry, take = await run_in_threadpool(store.add, word, wave, rate, settings)
        take["url"] = take_url(entry["id"], take["id"])
        return JSONResponse({"word": {"id": entry["id"], "name": entry["name"], "count": len(entry["takes"])},
                             "take": take}, status_code=201)

    @router.get("/teach/words/{word}/takes/{take}", summary="A stored take (audio/wav)",
                response_class=FileResponse)
    def get_take(word: str, take: str, request: Request) -> FileResponse:
        guard(request)
        (found,) = store.find(word, take)
        path = store.file(found)
        if not path.is_file():  # deleted since it was found
            raise HTTPException(404, f"no take {_shown(take)} of {_shown(word)}; GET /teach lists the takes")
        return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"})

    @router.delete("/teach/words/{word}/takes/{take}", summary="Delete a take")
    async def delete_take(word: str, take: str, request: Request) -> dict:
        guard(request)
        doomed = store.find(word, take)
        await run_in_threadpool(store.remove, doomed)
        return {"deleted": [t.take for t in doomed], "words": words_now()}

    @router.delete("/teach/words/{word}", summary="Delete a word and its takes")
    async def delete_word(word: str, request: Request) -> dict:
        guard(request)
        doomed = store.find(word)
        await run_in_threadpool(store.remove, doomed)
        return {"deleted": [t.take for t in doomed], "words": words_now()}

    @router.post("/teach/train", status_code=202, summary="Start teaching the model the words")
    async def start_training(request: Request) -> JSONResponse:
        """202 with the training's status; 409 while one runs. Poll ``GET /teach/train``."""
        guard(request)
        return JSONResponse(await run_in_threadpool(trainer.start), status_code=202)

    @router.get("/teach/train", summary="The training's progress")
    def training(request: Request) -> dict:
        guard(request)
        return trainer.snapshot()

    @router.api_route("/teach/{rest:teach_text}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
    def teach_unknown(rest: str, request: Request) -> Response:
        guard(request)
        raise HTTPException(404, f"no teach route {request.method} {_shown('/teach/' + rest)}; GET /teach says "
                                 "what there is (and /docs)")

    return router
