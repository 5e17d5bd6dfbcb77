"""The web page in a real headless Chromium (Debian's package, driven by Playwright) against uvicorn.

The microphone is Chromium's fake capture device fed from an FSDD test clip (padded with silence;
the device loops it). ``make test`` installs Chromium (``python -m tests.setup_browser``).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CANDIDATES = [f"{d}_{s}_{t}.wav" for t in range(5) for s in ("jackson", "theo", "nicolas") for d in range(10)]


@pytest.fixture(scope="module")
def classifier(trained_checkpoint):
    from spokenword.predict import load_classifier

    return load_classifier(trained_checkpoint, max_seconds=10)


@pytest.fixture(scope="module")
def server_url(classifier):
    import uvicorn

    from spokenword.serve import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(classifier), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def confident_clip(classifier, fsdd_recordings: Path) -> tuple[Path, str]:
    """A test-split clip (takes 0-4) the 3-epoch model gets right with high confidence."""
    best = None
    for name in CANDIDATES:
        path = fsdd_recordings / name
        top = classifier(path)[0]
        if top["label"] == name.split("_")[0] and (best is None or top["score"] > best[2]):
            best = (path, top["label"], top["score"])
            if top["score"] > 0.95:
                break
    assert best is not None, "the fixture model got none of the candidate clips right"
    return best[0], best[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory, confident_clip):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium, "
                    "or `python -m tests.setup_browser` as root; `make test` does it)")
    from playwright.sync_api import sync_playwright

    # the fake microphone: the word with 0.8 s of silence either side, at 48 kHz 16-bit
    import soxr

    wave, rate = sf.read(confident_clip[0], dtype="float32")
    wave = soxr.resample(wave, rate, 48000)
    pad = np.zeros(int(0.8 * 48000), dtype=np.float32)
    mic = tmp_path_factory.mktemp("mic") / "mic.wav"
    sf.write(mic, np.concatenate([pad, wave, pad]), 48000, subtype="PCM_16")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context()
    page = context.new_page()
    outside = []
    page.on("request", lambda r: None if r.url.startswith(server_url) else outside.append(r.url))
    page.goto(server_url)
    yield page
    assert not outside, f"the page fetched from outside the app: {outside}"
    context.close()


def shown(page) -> tuple[str, str]:
    page.wait_for_selector("#result:not([hidden])", timeout=20_000)
    return page.inner_text("#digit").strip(), page.inner_text("#confidence")


def test_record_from_the_microphone(page, classifier, confident_clip, tmp_path):
    page.click("#record")
    page.wait_for_function("document.querySelector('#record').classList.contains('recording')", timeout=10_000)
    page.wait_for_timeout(2200)
    with page.expect_response(lambda r: "/predict" in r.url, timeout=20_000) as info:
        page.click("#record")
    response = info.value
    answer = response.json()
    digit, confidence = shown(page)
    page.screenshot(path=str(tmp_path / "record.png"), full_page=True)
    recording = response.request.post_data_buffer  # the wav the page encoded from what it captured
    assert recording[:4] == b"RIFF" and len(recording) > 44
    audio, rate = sf.read(__import__("io").BytesIO(recording), dtype="float32")
    assert 1.5 < len(audio) / rate < 4.0, "the page should have recorded about 2 s"
    assert not answer["silent"], "the fake microphone's word was not captured"
    assert digit == answer["label"] == classifier(recording)[0]["label"]
    assert confidence.startswith(f"{answer['score'] * 100:.1f}%")
    assert page.locator("#history li").count() == 1
    assert page.locator("#bars .bar").count() == len(classifier.labels)
    # informative, not a test of the model: the word the microphone played
    print(f"recorded {len(audio) / rate:.2f} s at {rate} Hz: page shows {digit}, the clip says {confident_clip[1]}")


def test_upload_through_the_file_picker(page, classifier, confident_clip, fsdd_recordings, tmp_path):
    for path in (confident_clip[0], fsdd_recordings / "4_theo_2.wav"):
        with page.expect_response(lambda r: "/predict" in r.url, timeout=20_000):
            page.set_input_files("#file", str(path))
        page.wait_for_function(f"document.querySelector('#history').children.length >= 1 && "
                               f"document.querySelector('#message').textContent.includes({path.name!r})", timeout=20_000)
        digit, _ = shown(page)
        assert digit == classifier(path)[0]["label"]
    assert page.locator("#history li").count() == 2
    spectrogram = page.evaluate("(() => { const c = document.querySelector('#spectrogram'); return [c.width, c.height]; })()")
    wave = classifier.waveform(path)
    assert spectrogram == list(reversed(classifier.spectrogram(wave).shape[1:]))
    page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)


def test_silent_and_bad_files_get_a_message(page, tmp_path):
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(8000, dtype=np.float32), 8000)
    page.set_input_files("#file", str(silent))
    page.wait_for_function("document.querySelector('#message').textContent.includes('No speech heard')", timeout=20_000)
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"this is not audio at all")
    page.set_input_files("#file", str(junk))
    page.wait_for_function("document.querySelector('#message').classList.contains('error')", timeout=20_000)
    assert "notes.wav" in page.inner_text("#message") and "not a readable audio file" in page.inner_text("#message")
