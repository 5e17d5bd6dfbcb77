"""The web page in a real headless Chromium (Debian's package, driven by Playwright) against uvicorn.

The microphone is Chromium's fake capture device fed from a wav file (the device loops it): one
FSDD test clip padded with silence for the one-digit mode, a multi-digit number made of test clips
(takes 0-4) for the continuous mode. "Not a digit" answers come from a stand-in model
(:mod:`tests.rejecting_model`). ``make test`` installs Chromium (``python -m tests.setup_browser``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CANDIDATES = [f"{d}_{s}_{t}.wav" for t in range(5) for s in ("jackson", "theo", "nicolas") for d in range(10)]


@pytest.fixture(scope="module")
def classifier(trained_checkpoint):
    from spokenword.inference.load import load_model as load_classifier

    return load_classifier(trained_checkpoint, max_seconds=10)


@contextmanager
def running(app):
    """``app`` on uvicorn in a thread; yields its URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server_url(classifier):
    from spokenword.serve import create_app

    with running(create_app(classifier)) as url:
        yield url


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
def playwright():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium, "
                    "or `python -m tests.setup_browser` as root; `make test` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def launch(playwright, mic: Path):
    """Headless Chromium whose (looping) fake microphone plays ``mic``."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])


def write_mic(path: Path, wave: np.ndarray, rate: int) -> Path:
    """The fake microphone's file: 48 kHz 16-bit, as a sound card would deliver."""
    import soxr

    sf.write(path, soxr.resample(wave, rate, 48000), 48000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory, confident_clip):
    # the fake microphone: the word with 0.8 s of silence either side
    wave, rate = sf.read(confident_clip[0], dtype="float32")
    pad = np.zeros(int(0.8 * rate), dtype=np.float32)
    chromium = launch(playwright, write_mic(tmp_path_factory.mktemp("mic") / "mic.wav", np.concatenate([pad, wave, pad]), rate))
    yield chromium
    chromium.close()


def open_page(browser, server_url, init_script: str | None = None):
    context = browser.new_context()
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    outside = []
    page.on("request", lambda r: None if r.url.startswith(server_url) else outside.append(r.url))
    page.goto(server_url)
    return context, page, outside


@pytest.fixture
def page(browser, server_url):
    context, page, outside = open_page(browser, server_url)
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


# -- continuous mode -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spoken_number(classifier, fsdd_recordings: Path, tmp_path_factory) -> tuple[Path, str]:
    """A 4-digit number of test-split clips (takes 0-4; different digits and speakers) the model gets
    right, 0.6 s apart, 0.8 s of silence before and after, as the fake microphone's file; and its
    digits, which the offline transcriber (the live endpoint's settings) also reads from it."""
    from spokenword.serve.live import live_vad
    from spokenword.transcribe.decode import Transcriber

    transcriber = Transcriber(classifier, vad=live_vad())
    rate = classifier.sample_rate
    gap = np.zeros(int(0.6 * rate), np.float32)
    digits, parts, used = "", [np.zeros(int(0.8 * rate), np.float32)], set()
    for name in CANDIDATES:
        digit, speaker = name.split("_")[:2]
        if digit in digits or speaker in used:
            continue
        top = classifier(fsdd_recordings / name)[0]
        if top["label"] != digit or top["score"] < 0.9:
            continue
        wave = classifier.waveform(fsdd_recordings / name)
        alone = np.concatenate([gap, wave, gap])
        if transcriber.transcribe_samples(alone, rate).text != digit:
            continue
        digits += digit
        used = {speaker}  # no speaker twice in a row
        parts += [wave, gap]
        if len(digits) == 4:
            break
    assert len(digits) == 4, f"only {len(digits)} usable clips"
    parts.append(np.zeros(int(0.2 * rate), np.float32))
    wave = np.concatenate(parts)
    assert transcriber.transcribe_samples(wave, rate).text == digits
    return write_mic(tmp_path_factory.mktemp("number") / "number.wav", wave, rate), digits


@pytest.fixture(scope="module")
def live_browser(playwright, spoken_number):
    chromium = launch(playwright, spoken_number[0])
    yield chromium
    chromium.close()


def test_continuous_mode_shows_digits_as_they_are_spoken(live_browser, server_url, spoken_number, tmp_path):
    _, digits = spoken_number
    context, page, outside = open_page(live_browser, server_url)
    page.click("#mode-continuous")
    assert page.is_visible("#live") and page.inner_text("#record").endswith("Listen")
    page.click("#record")
    # the fake microphone loops the file and may start anywhere in it: wait for one whole pass
    page.wait_for_function(f"document.querySelector('#transcript').textContent.includes({json.dumps(digits)})",
                           timeout=40_000)
    shown = page.inner_text("#transcript").replace("\n", "").replace(" ", "")
    assert digits in shown
    assert page.locator("#transcript .word").count() == len(shown)
    assert "Listening" in page.inner_text("#message")
    page.screenshot(path=str(tmp_path / "continuous.png"), full_page=True)
    timings = page.evaluate("window.spokenwordLive.timings")
    assert len(timings) >= len(digits) and all(t["latency_ms"] is not None for t in timings)
    page.click("#record")  # stop: the server sends the last word and closes
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('Stopped.')", timeout=10_000)
    assert "error" not in page.get_attribute("#message", "class")
    assert page.inner_text("#history li").endswith("(continuous)")
    assert page.inner_text("#record").endswith("Listen")
    assert not outside, f"the page fetched from outside the app: {outside}"
    latency = sorted(t["latency_ms"] for t in timings)
    print(f"continuous mode showed {shown}; digits {digits}; frame-to-event latency median "
          f"{latency[len(latency) // 2]:.0f} ms, max {latency[-1]:.0f} ms")
    context.close()


def test_continuous_mode_says_when_the_microphone_is_denied(browser, server_url):
    denied = ("navigator.mediaDevices.getUserMedia = () => "
              "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));")
    context, page, _ = open_page(browser, server_url, init_script=denied)
    page.click("#mode-continuous")
    page.click("#record")
    page.wait_for_function("document.querySelector('#message').classList.contains('error')", timeout=10_000)
    assert "Microphone access was denied" in page.inner_text("#message")
    assert page.inner_text("#record").endswith("Listen")
    context.close()


def test_continuous_mode_says_when_the_connection_is_lost(browser, server_url):
    """The WebSocket is answered by a stand-in that accepts the stream, then drops it."""
    context, page, _ = open_page(browser, server_url)
    frames = []

    def server(ws):
        def on_message(message):
            if isinstance(message, str):
                ws.send(json.dumps({"type": "ready", "sample_rate": 8000}))
            else:
                frames.append(len(message))
                if len(frames) == 10:
                    ws.close(code=1001, reason="server restarting")

        ws.on_message(on_message)

    page.route_web_socket("**/ws/transcribe", server)
    page.click("#mode-continuous")
    page.click("#record")
    page.wait_for_function("document.querySelector('#message').textContent.includes('Connection lost')", timeout=20_000)
    message = page.inner_text("#message")
    assert "code 1001: server restarting" in message and "Press Listen to try again" in message
    assert len(frames) >= 10 and page.inner_text("#record").endswith("Listen")
    context.close()


# -- "not a digit" (a stand-in model with _unknown_ and _silence_) ---------------------------------
@pytest.fixture(scope="module")
def rejecting_url():
    from spokenword.serve import create_app
    from tests.rejecting_model import ToneWords

    with running(create_app(ToneWords())) as url:
        yield url


@pytest.fixture(scope="module")
def quiet_browser(playwright, tmp_path_factory):
    chromium = launch(playwright, write_mic(tmp_path_factory.mktemp("quiet") / "quiet.wav", np.zeros(8000, np.float32), 8000))
    yield chromium
    chromium.close()


def test_an_answer_that_is_not_a_word_shows_not_a_digit(quiet_browser, rejecting_url, tmp_path):
    from tests.rejecting_model import NOISE, ONE, OTHER_WORD, tone

    context, page, outside = open_page(quiet_browser, rejecting_url)
    for n, (freq, expected) in enumerate([(OTHER_WORD, "not a digit"), (NOISE, "no speech"), (ONE, "1")]):
        path = tmp_path / f"tone{n}.wav"
        sf.write(path, tone(freq, 0.5), 8000)
        with page.expect_response(lambda r: "/predict" in r.url, timeout=20_000):
            page.set_input_files("#file", str(path))
        page.wait_for_function(f"document.querySelector('#history').children.length === {n + 1}", timeout=20_000)
        digit, _ = shown(page)
        assert digit == expected
        assert page.locator(".digit.rejected").count() == (expected != "1")
        assert page.inner_text("#history li").startswith(expected)
    assert page.locator("#bars .bar").count() == 12
    assert page.inner_text("#bars").split() == [*"0123456789", "noise", "other"]
    assert not outside, f"the page fetched from outside the app: {outside}"
    context.close()


def test_continuous_mode_leaves_what_is_not_a_digit_out(quiet_browser, rejecting_url):
    """A stand-in WebSocket sends two words with a rejected sound between them."""
    context, page, _ = open_page(quiet_browser, rejecting_url)
    events = [{"type": "word", "label": "4", "score": 0.9, "start": 0.2, "end": 0.5, "uncertain": False, "decided_at": 0.7},
              {"type": "rejected", "label": "_unknown_", "score": 0.8, "start": 0.9, "end": 1.3, "decided_at": 1.5},
              {"type": "word", "label": "2", "score": 0.9, "start": 1.6, "end": 1.9, "uncertain": False, "decided_at": 2.1}]

    def server(ws):
        def on_message(message):
            if isinstance(message, str) and json.loads(message).get("sample_rate"):
                ws.send(json.dumps({"type": "ready", "sample_rate": 8000}))
                for event in events:
                    ws.send(json.dumps(event))

        ws.on_message(on_message)

    page.route_web_socket("**/ws/transcribe", server)
    page.click("#mode-continuous")
    page.click("#record")
    page.wait_for_function("document.querySelector('#transcript').textContent === '42'", timeout=20_000)
    page.wait_for_selector("#ignored:not([hidden])", timeout=5_000)
    assert "not a digit" in page.inner_text("#ignored") and "Ignored 1 sound" in page.inner_text("#ignored")
    assert page.locator("#transcript .word").count() == 2
    context.close()
