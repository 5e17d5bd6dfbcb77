"""Dataset integrity after interruptions: a download killed or corrupted mid-way never counts as
installed; a feature-cache entry written by an interrupted run is never reused; a manifest naming
a missing file reports it by name. (Basic download/validation cases: tests/unit/test_download.py.)"""

from __future__ import annotations

import http.server
import io
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from spokenword.data.cache import FeatureCache, extract_file
from spokenword.data.corpora import DatasetError, fsdd
from spokenword.frontend.settings import FeatureSettings
from tests.conftest import batch_atol, tone, write_wav

REPO = Path(__file__).resolve().parents[2]
PREFIX = "free-spoken-digit-dataset-1.0.10"


def _archive(tmp_path: Path, *, flip: bool = False) -> tuple[bytes, str]:
    """A small release-shaped tar.gz and the digest of its intact recordings; ``flip`` corrupts one
    sample byte inside a wav (the archive itself stays valid: only the checksum can tell)."""
    source = tmp_path / "source"
    for digit in range(3):
        write_wav(source / "recordings" / f"{digit}_george_0.wav", tone(0.05, freq=300.0 + 100 * digit))
    digest = fsdd.content_digest(source / "recordings")
    # incompressible padding outside recordings/: the slow server then takes ~5 s to send it all
    (source / "padding.bin").write_bytes(np.random.default_rng(0).bytes(50_000))
    if flip:
        wav = source / "recordings" / "1_george_0.wav"
        data = bytearray(wav.read_bytes())
        data[-10] ^= 0xFF
        wav.write_bytes(bytes(data))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=PREFIX)
    return buffer.getvalue(), digest


def test_bit_flip_in_download_is_caught_by_checksum_and_discarded(tmp_path):
    payload, digest = _archive(tmp_path, flip=True)
    archive = tmp_path / "release.tar.gz"
    archive.write_bytes(payload)
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fsdd.download(root, url=archive.as_uri(), expected_digest=digest, progress=False)
    assert not (root / "fsdd").exists()
    assert not list(root.glob(".fsdd-download-*"))


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` in small pieces with pauses, so a download can be killed mid-transfer."""

    payload = b""

    def do_GET(self):  # noqa: N802 - http.server API
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        try:
            for i in range(0, len(self.payload), 512):
                self.wfile.write(self.payload[i : i + 512])
                self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server(tmp_path):
    payload, digest = _archive(tmp_path)
    handler = type("Handler", (_SlowHandler,), {"payload": payload})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/release.tar.gz", digest
    server.shutdown()
    server.server_close()


def test_killed_download_is_never_taken_as_installed(tmp_path, slow_server):
    url, digest = slow_server
    root = tmp_path / "data"
    script = (f"from spokenword.data.corpora import fsdd; "
              f"fsdd.download({str(root)!r}, url={url!r}, expected_digest={digest!r}, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not list(root.glob(".fsdd-download-*/fsdd.tar.gz")):
            assert proc.poll() is None, "download ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(1.0)  # mid-transfer: the server needs ~5 s for the whole archive
        assert proc.poll() is None, "download ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (root / "fsdd").exists()
    assert not fsdd.is_installed(root)
    # a half-extracted copy from some other interruption (no completion marker) is not trusted either
    write_wav(root / "fsdd" / "recordings" / "0_george_0.wav", tone(0.05))
    assert not fsdd.is_installed(root)
    recordings = fsdd.download(root, url=url, expected_digest=digest, progress=False)
    assert fsdd.content_digest(recordings) == digest
    assert fsdd.is_installed(root)


@pytest.fixture
def clips(tmp_path):
    # a noise floor: float32 features hold bins within 80 dB of the loudest (graph.power_spectrogram); a bare tone's are not
    rng = np.random.default_rng(0)
    return [write_wav(tmp_path / "audio" / f"{i}.wav", tone(0.2, freq=150.0 + 40 * i) + 1e-3 * rng.standard_normal(1600).astype(np.float32))
            for i in range(12)]


def _expected(clips, settings):
    return np.stack([extract_file(p, 8000, settings) for p in clips])


def test_cache_killed_mid_write_is_not_reused(tmp_path, clips):
    """SIGKILL the process while it fills a cache entry; the next run recomputes every clip."""
    cache_dir = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from spokenword.data import cache
        from spokenword.frontend.settings import FeatureSettings
        real = cache._extract_chunk
        def slow(args):
            time.sleep(0.3)
            return real(args)
        cache._extract_chunk = slow
        cache.CHUNK = 1
        paths = [Path(p) for p in {[str(p) for p in clips]!r}]
        cache.FeatureCache(Path({str(cache_dir)!r}), workers=1).features(paths, 8000, FeatureSettings())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(cache_dir.glob(".tmp-*")):
            assert proc.poll() is None, "cache finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.5)  # part of the entry is written
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    settings = FeatureSettings()
    cache = FeatureCache(cache_dir, workers=1)
    assert not cache.entry(clips, 8000, settings).exists()  # only the temporary file was left
    features = cache.features(clips, 8000, settings)
    expected = _expected(clips, settings)
    np.testing.assert_allclose(np.asarray(features), expected, rtol=0, atol=batch_atol(expected))


def test_cache_interrupted_by_exception_leaves_nothing(tmp_path, clips, monkeypatch):
    from spokenword.data import cache as cache_module

    calls = []
    real = cache_module._extract_chunk

    def failing(args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(cache_module, "CHUNK", 4)
    monkeypatch.setattr(cache_module, "_extract_chunk", failing)
    cache = FeatureCache(tmp_path / "cache", workers=1)
    with pytest.raises(KeyboardInterrupt):
        cache.features(clips, 8000, FeatureSettings())
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setattr(cache_module, "_extract_chunk", real)
    features = cache.features(clips, 8000, FeatureSettings())
    expected = _expected(clips, FeatureSettings())
    np.testing.assert_allclose(np.asarray(features), expected, rtol=0, atol=batch_atol(expected))


def test_truncated_cache_entry_is_rebuilt(tmp_path, clips):
    """An entry cut short (a copy from a crashed non-atomic writer, a full disk) is recomputed."""
    settings = FeatureSettings()
    cache = FeatureCache(tmp_path / "cache", workers=1)
    cache.features(clips, 8000, settings)
    entry = cache.entry(clips, 8000, settings)
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    features = cache.features(clips, 8000, settings)
    expected = _expected(clips, settings)
    np.testing.assert_allclose(np.asarray(features), expected, rtol=0, atol=batch_atol(expected))


def test_manifest_with_missing_file_names_it(tmp_path, clips):
    from spokenword.data.datamodule import AudioDataModule
    from spokenword.data.corpora import LabelledFolder

    missing = tmp_path / "audio" / "gone.wav"
    manifest = tmp_path / "audio" / "labels.csv"
    manifest.write_text("path,label,speaker\n" + "".join(f"{p.name},{i % 2},s{i % 3}\n" for i, p in enumerate(clips))
                        + f"{missing.name},1,s0\n")
    module = AudioDataModule(root=tmp_path, corpus=LabelledFolder(str(tmp_path / "audio")), split="speakers",
                             test_speakers=["s0"], val_speakers=["s1"], cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="gone.wav"):
        module.prepare_data()
