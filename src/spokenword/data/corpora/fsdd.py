"""The Free Spoken Digit Dataset (FSDD), release v1.0.10.

3,000 mono 8 kHz 16-bit wav files, 6 speakers x 10 digits x 50 takes, named
``{digit}_{speaker}_{take}.wav``, stored here under ``<root>/fsdd/recordings``.

The download is verified by content: the SHA-256 of the sorted ``"<sha256>  <name>"`` lines of all
3,000 recordings (:data:`CONTENT_SHA256`), computed from the unchanged v1.0.10 release. Checking
the recordings themselves, not the archive, makes the check independent of how GitHub compresses
its tag archives, and the same check verifies a copy obtained any other way.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import soundfile as sf

from spokenword.data.corpora.base import Corpus, DatasetError, Recording

VERSION = "v1.0.10"
URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/{VERSION}.tar.gz"
CONTENT_SHA256 = "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DIGITS = tuple(str(d) for d in range(10))
TAKES = 50
SAMPLE_RATE = 8000
#: speaker, gender, accent, language, as the dataset documents them (written to speakers.csv)
SPEAKER_METADATA = (
    ("george", "male", "GRC/Greek", "english"),
    ("jackson", "male", "USA/neutral", "english"),
    ("lucas", "male", "DEU/German", "english"),
    ("nicolas", "male", "BEL/French", "english"),
    ("theo", "male", "USA/neutral", "english"),
    ("yweweler", "male", "DEU/German", "english"),
)
_NAME = re.compile(r"^(?P<label>\d)_(?P<speaker>[a-z]+)_(?P<take>\d+)\.wav$")


def parse_name(name: str) -> tuple[str, str, int] | None:
    """``"7_theo_12.wav"`` to ``("7", "theo", 12)``; ``None`` for other names."""
    match = _NAME.match(name)
    if not match:
        return None
    return match["label"], match["speaker"], int(match["take"])


def content_digest(recordings_dir: Path) -> str:
    """SHA-256 over the sorted ``"<sha256>  <name>"`` lines of the wav files in a folder."""
    lines = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(recordings_dir.glob("*.wav"))
    )
    return hashlib.sha256(lines.encode()).hexdigest()


class FSDD(Corpus):
    """The Free Spoken Digit Dataset under ``<root>/fsdd``.

    Args:
        validate: check on load that every expected file exists, no extra file is present and
            every header is readable (about a second for 3,000 files).
    """

    def __init__(self, validate: bool = True):
        self.validate = validate

    @staticmethod
    def folder(root: Path) -> Path:
        return Path(root) / "fsdd" / "recordings"

    def recordings(self, root: Path) -> list[Recording]:
        folder = self.folder(root)
        if not folder.is_dir():
            raise DatasetError(
                f"FSDD not found at {folder}. Run `spokenword download --data.root {root}` "
                "or point --data.root / SPOKENWORD_DATA at a folder holding fsdd/recordings."
            )
        found: dict[str, Recording] = {}
        extra: list[str] = []
        for path in sorted(folder.iterdir()):
            parsed = parse_name(path.name)
            if parsed is None or parsed[1] not in SPEAKERS or parsed[2] >= TAKES:
                if not path.name.startswith("."):
                    extra.append(path.name)
                continue
            label, speaker, take = parsed
            found[path.name] = Recording(path=path, label=label, speaker=speaker, take=take)
        if self.validate:
            expected = {f"{d}_{s}_{t}.wav" for d in DIGITS for s in SPEAKERS for t in range(TAKES)}
            missing = sorted(expected - found.keys())
            unreadable = [name for name, rec in found.items() if not _readable(rec.path)]
            problems = []
            if missing:
                problems.append(f"{len(missing)} missing ({_names(missing)})")
            if extra:
                problems.append(f"{len(extra)} unexpected ({_names(extra)})")
            if unreadable:
                problems.append(f"{len(unreadable)} unreadable ({_names(unreadable)})")
            if problems:
                raise DatasetError(
                    f"FSDD {VERSION} at {folder} is not intact: " + "; ".join(problems)
                    + ". Re-run `spokenword download` to restore it."
                )
        return sorted(found.values(), key=lambda r: r.path.name)

    def labels(self, recordings: list[Recording]) -> list[str]:
        return list(DIGITS)

    def prepare(self, root: Path) -> None:
        download(root)


def _readable(path: Path) -> bool:
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any failure to parse the header means unreadable
        return False
    return info.frames > 0 and info.samplerate > 0


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... {len(names) - limit} more" if len(names) > limit else "")


def is_installed(root: Path) -> bool:
    """True when ``<root>/fsdd`` was completed by :func:`download` (or holds all 3,000 files)."""
    fsdd = Path(root) / "fsdd"
    return (fsdd / ".complete").exists() or len(list(FSDD.folder(root).glob("*.wav"))) == 3000


def download(
    root: Path, *, url: str = URL, expected_digest: str = CONTENT_SHA256, force: bool = False, progress: bool = True
) -> Path:
    """Download FSDD into ``<root>/fsdd`` atomically and verify its content digest.

    The archive goes to a temporary folder inside ``root``; only after the recordings' digest
    matches is the folder renamed to ``fsdd``. An interrupted or corrupted download leaves no
    ``fsdd`` folder behind. Idempotent: an existing, complete copy is kept.

    Returns:
        The ``recordings`` folder.
    """
    root = Path(root)
    target = root / "fsdd"
    if target.exists() and not force and is_installed(root):
        return target / "recordings"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fsdd-download-", dir=root) as tmp:
        tmp_path = Path(tmp)
        archive = tmp_path / "fsdd.tar.gz"
        _fetch(url, archive, progress=progress)
        staging = tmp_path / "fsdd"
        (staging / "recordings").mkdir(parents=True)
        try:
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and "/recordings/" in f"/{m.name}" and m.name.endswith(".wav")]
                if not members:
                    raise DatasetError(f"the archive from {url} holds no recordings/*.wav files")
                for member in members:
                    source = tar.extractfile(member)
                    assert source is not None
                    (staging / "recordings" / Path(member.name).name).write_bytes(source.read())
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DatasetError(f"the archive from {url} is corrupt ({err}); nothing was installed") from None
        digest = content_digest(staging / "recordings")
        if digest != expected_digest:
            raise DatasetError(
                f"checksum mismatch for FSDD {VERSION} from {url}: expected {expected_digest}, got {digest}; "
                "the download was discarded"
            )
        (staging / "speakers.csv").write_text(
            "speaker,gender,accent,language\n" + "".join(",".join(row) + "\n" for row in SPEAKER_METADATA)
        )
        (staging / ".complete").write_text(f"{VERSION} {digest}\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target / "recordings"


def _fetch(url: str, destination: Path, *, progress: bool) -> None:
    from tqdm.auto import tqdm  # only here, so inference-only installs need no tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"FSDD {VERSION}", disable=not progress) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as err:
        raise DatasetError(f"could not download {url}: {err}") from None
