"""The page's Teach tab in a real headless Chromium (Debian's package, driven by Playwright) against
uvicorn serving the bundled model with teaching on.

The microphone is Chromium's fake capture device looping a wav file: an FSDD recording played
backwards (a word the digits model has never heard) with silence either side. The test names the
word, records three takes, listens to one, deletes and re-records one, trains, then records in the
Recognise tab and sees the page answer the new word; the continuous mode's stream hears the new model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tests.e2e.test_browser import launch, open_page, playwright, running, write_mic  # noqa: F401 - playwright: the fixture, shared

pytestmark = pytest.mark.e2e

WORD = "backwards"
CLIP = "5_theo_10.wav"
RECORD_MS = 2400  # longer than one loop of the fake microphone's file: every take holds the whole word


@pytest.fixture(scope="module")
def classifier():
    from spokenword.inference.load import load_model

    return load_model(max_seconds=10, threads=1)


@pytest.fixture(scope="module")
def teach_url(classifier, tmp_path_factory):
    from spokenword.serve import create_app
    from spokenword.serve.teach import TeachSettings

    folder = tmp_path_factory.mktemp("teach")
    with running(create_app(classifier, teach=TeachSettings(folder, steps=60))) as url:
        yield url


@pytest.fixture(scope="module")
def plain_url(classifier):
    from spokenword.serve import create_app

    with running(create_app(classifier, live=False)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(playwright, fsdd_recordings, tmp_path_factory):
    wave, rate = sf.read(fsdd_recordings / CLIP, dtype="float32")
    pad = np.zeros(int(0.8 * rate), dtype=np.float32)
    mic = write_mic(tmp_path_factory.mktemp("mic") / "backwards.wav", np.concatenate([pad, wave[::-1], pad]), rate)
    chromium = launch(playwright, mic)
    yield chromium
    chromium.close()


def takes_shown(page) -> int:
    return page.locator("#teach-words .takes li").count()


def record_take(page, expected: int) -> dict:
    page.click("#teach-record")
    page.wait_for_function("document.querySelector('#teach-record').classList.contains('recording')", timeout=10_000)
    page.wait_for_timeout(RECORD_MS)
    with page.expect_response(lambda r: "/teach/words/" in r.url and r.request.method == "POST", timeout=20_000) as info:
        page.click("#teach-record")
    assert info.value.status == 201, info.value.text()
    page.wait_for_function(f"document.querySelectorAll('#teach-words .takes li').length === {expected}", timeout=10_000)
    return info.value.json()


def test_the_teach_tab_is_hidden_when_teaching_is_off(browser, plain_url):
    context, page, outside = open_page(browser, plain_url)
    page.wait_for_load_state("networkidle")
    assert page.is_hidden("#tabs") and page.is_hidden("#panel-teach")
    assert page.is_visible("#record")
    assert not outside
    context.close()


def test_teach_a_word_and_the_page_uses_it(browser, teach_url, classifier, tmp_path):
    assert WORD not in classifier.labels
    context, page, outside = open_page(browser, teach_url)
    page.wait_for_selector("#tabs:not([hidden])", timeout=10_000)
    page.click("#tab-teach")
    assert page.is_visible("#panel-teach") and page.is_hidden("#panel-recognise")
    page.wait_for_function("document.querySelector('#teach-limits').textContent.includes('at least 3 takes')", timeout=10_000)

    # no word typed: the page asks for one instead of recording
    page.click("#teach-record")
    assert "Type the word first" in page.inner_text("#teach-message")
    page.fill("#teach-word", WORD)
    for n in range(1, 4):
        answer = record_take(page, n)
        assert answer["word"] == {"id": answer["word"]["id"], "name": WORD, "count": n}
        assert 2.0 < answer["take"]["seconds"] < 3.0, "the page should have recorded about 2.4 s"
        assert f'Take {n} of "{WORD}" saved' in page.inner_text("#teach-message")
    assert page.inner_text("#teach-words .word-name") == WORD
    assert "3 takes" in page.inner_text("#teach-words .count")

    # each take can be played back: its <audio> points at the stored 16-bit wav
    source = page.get_attribute("#teach-words .takes li audio", "src")
    played = page.request.get(source if source.startswith("http") else teach_url + source)
    assert played.status == 200 and played.headers["content-type"] == "audio/wav"
    import io

    info = sf.info(io.BytesIO(played.body()))
    assert info.samplerate == classifier.sample_rate and info.subtype == "PCM_16"
    duration = page.evaluate("""async () => {
        const a = document.querySelector('#teach-words .takes li audio');
        a.preload = 'auto'; a.load();
        await new Promise((ok, fail) => { a.onloadedmetadata = ok; a.onerror = fail; });
        return a.duration; }""")
    assert 2.0 < duration < 3.0

    # delete one take, record it again
    with page.expect_response(lambda r: r.request.method == "DELETE", timeout=10_000) as deleted:
        page.click("#teach-words .takes li .delete-take")
    assert deleted.value.status == 200
    page.wait_for_function("document.querySelectorAll('#teach-words .takes li').length === 2", timeout=10_000)
    assert "Take deleted" in page.inner_text("#teach-message")
    record_take(page, 3)
    page.screenshot(path=str(tmp_path / "takes.png"), full_page=True)

    # train: progress while it runs, then the words the model knows
    with page.expect_response(lambda r: r.url.endswith("/teach/train") and r.request.method == "POST") as started:
        page.click("#teach-train")
    assert started.value.status == 202
    page.wait_for_function("document.querySelector('#teach-status').textContent.startsWith('Training')", timeout=10_000)
    assert page.is_disabled("#teach-train")
    page.wait_for_function("document.querySelector('#teach-status').textContent.startsWith('Done')"
                           " || document.querySelector('#teach-status').classList.contains('error')", timeout=240_000)
    status = page.inner_text("#teach-status")
    assert status.startswith("Done: the model now knows") and WORD in status and "0, 1, 2" in status, status
    assert page.is_enabled("#teach-train") and page.is_hidden("#teach-progress")
    assert "(the model knows it)" in page.inner_text("#teach-words .count")
    page.screenshot(path=str(tmp_path / "trained.png"), full_page=True)

    # the Recognise tab: a recording of the word is answered with it, and the bars show the new label
    page.click("#tab-recognise")
    page.click("#record")
    page.wait_for_function("document.querySelector('#record').classList.contains('recording')", timeout=10_000)
    page.wait_for_timeout(RECORD_MS)
    with page.expect_response(lambda r: "/predict" in r.url, timeout=20_000) as info:
        page.click("#record")
    answer = info.value.json()
    page.wait_for_selector("#result:not([hidden])", timeout=20_000)
    assert answer["label"] == WORD, answer["top_k"][:3]
    assert page.inner_text("#digit").strip() == WORD
    page.wait_for_function(f"[...document.querySelectorAll('#bars .bar')].some(b => b.textContent === {json.dumps(WORD)})",
                           timeout=10_000)
    assert page.locator("#bars .bar").count() == len(classifier.labels) + 1
    page.screenshot(path=str(tmp_path / "recognised.png"), full_page=True)

    # the continuous mode: a new stream is served by the new model
    ready = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: ready.append(json.loads(frame))
                                          if isinstance(frame, str) and '"ready"' in frame else None))
    page.click("#mode-continuous")
    page.click("#record")
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('Listening')", timeout=20_000)
    assert ready and WORD in ready[0]["labels"]
    page.wait_for_timeout(3000)
    heard = page.inner_text("#transcript")
    page.click("#record")
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('Stopped.')", timeout=10_000)
    print(f"continuous mode after teaching heard: {heard!r}")  # informative: the segmenter's view of reversed speech
    assert not outside, f"the page fetched from outside the app: {outside}"
    context.close()
