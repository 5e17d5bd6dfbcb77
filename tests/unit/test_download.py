"""FSDD download (a synthetic release archive served locally) and FSDD validation."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from spokenword.data.datamodule import AudioDataModule
from spokenword.data.corpora import FSDD, DatasetError
from spokenword.data.corpora import fsdd
from tests.conftest import tone, write_wav

PREFIX = "free-spoken-digit-dataset-1.0.10"


@pytest.fixture
def release(tmp_path) -> tuple[Path, str]:
    """A small tar.gz shaped like the GitHub release (recordings/ plus other files) and the
    content digest of its recordings."""
    source = tmp_path / "source"
    for digit in range(3):
        write_wav(source / "recordings" / f"{digit}_george_0.wav", tone(0.05, freq=300.0 + 100 * digit))
    (source / "README.md").write_text("synthetic release")
    archive = tmp_path / "serve" / "release.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=PREFIX)
    return archive, fsdd.content_digest(source / "recordings")


def _nothing_installed(root: Path) -> bool:
    return not (root / "fsdd").exists() and not list(root.glob(".fsdd-download-*"))


def test_download_over_http_installs_verified_and_is_idempotent(tmp_path, release):
    archive, digest = release
    handler = functools.partial(QuietHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
        root = tmp_path / "data"
        folder = fsdd.download(root, url=url, expected_digest=digest, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert folder == root / "fsdd" / "recordings"
    assert sorted(p.name for p in folder.iterdir()) == ["0_george_0.wav", "1_george_0.wav", "2_george_0.wav"]
    assert fsdd.content_digest(folder) == digest
    assert (root / "fsdd" / "speakers.csv").read_text().startswith("speaker,gender")
    assert fsdd.is_installed(root) and not list(root.glob(".fsdd-download-*"))
    # idempotent: a second call does not fetch (the server is gone) and keeps the copy
    assert fsdd.download(root, url=url, expected_digest=digest, progress=False) == folder


def test_download_from_a_file_url(tmp_path, release):
    archive, digest = release
    root = tmp_path / "data"
    fsdd.download(root, url=archive.as_uri(), expected_digest=digest, progress=False)
    assert len(list(fsdd.FSDD.folder(root).glob("*.wav"))) == 3


def test_checksum_mismatch_installs_nothing(tmp_path, release):
    archive, _ = release
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fsdd.download(root, url=archive.as_uri(), expected_digest="0" * 64, progress=False)
    assert _nothing_installed(root)


def test_truncated_archive_installs_nothing(tmp_path, release):
    archive, digest = release
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="corrupt"):
        fsdd.download(root, url=truncated.as_uri(), expected_digest=digest, progress=False)
    assert _nothing_installed(root)


def test_archive_without_recordings_and_unreachable_url(tmp_path):
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz") as tar:
        info = tarfile.TarInfo(f"{PREFIX}/README.md")
        tar.addfile(info, io.BytesIO(b""))
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="no recordings"):
        fsdd.download(root, url=empty.as_uri(), progress=False)
    with pytest.raises(DatasetError, match="could not download"):
        fsdd.download(root, url=(tmp_path / "absent.tar.gz").as_uri(), progress=False)
    assert _nothing_installed(root)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def small_fsdd(tmp_path, monkeypatch) -> Path:
    """A complete FSDD-shaped folder for a corpus of 1 speaker x 10 digits x 2 takes."""
    monkeypatch.setattr(fsdd, "SPEAKERS", ("george",))
    monkeypatch.setattr(fsdd, "TAKES", 2)
    folder = tmp_path / "fsdd" / "recordings"
    for digit in range(10):
        for take in range(2):
            write_wav(folder / f"{digit}_george_{take}.wav", tone(0.02))
    return tmp_path


def test_validation_accepts_a_complete_copy(small_fsdd):
    assert len(FSDD().recordings(small_fsdd)) == 20


def test_validation_names_missing_extra_and_unreadable_files(small_fsdd):
    folder = FSDD.folder(small_fsdd)
    (folder / "3_george_1.wav").unlink()
    (folder / "notes.txt").write_text("stray")
    write_wav(folder / "4_george_7.wav", tone(0.02))  # take beyond the release
    (folder / "5_george_0.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(DatasetError) as info:
        FSDD().recordings(small_fsdd)
    message = str(info.value)
    assert "1 missing (3_george_1.wav)" in message
    assert "2 unexpected (4_george_7.wav, notes.txt)" in message
    assert "1 unreadable (5_george_0.wav)" in message
    assert "spokenword download" in message
    assert len(FSDD(validate=False).recordings(small_fsdd)) == 19


def test_data_module_never_downloads_in_init(tmp_path):
    module = AudioDataModule(root=str(tmp_path / "empty"), cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "empty").exists()
    with pytest.raises(DatasetError, match="FSDD not found .*spokenword download"):
        module.labels  # noqa: B018 - the property loads (and validates) the corpus
