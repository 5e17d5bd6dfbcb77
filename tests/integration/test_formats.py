"""Phone, browser and messaging formats (m4a/AAC, webm/opus, mp4, mp3) through PyAV, the ``formats``
extra: built here with PyAV's encoders from an FSDD clip, classified by the bundled model through the
command line and ``/predict``, under the same decode limit and block contract as soundfile's formats."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import soxr

from spokenword import audio
from spokenword.cli import main
from tests.conftest import REPO

av = pytest.importorskip("av")
pytestmark = pytest.mark.integration

#: name -> (container, codec, sample rate)
FORMATS = {"m4a": ("mp4", "aac", 16000), "webm": ("webm", "libopus", 48000), "mp4": ("mp4", "aac", 44100),
           "mp3": ("mp3", "libmp3lame", 22050)}


def encode(path, wave: np.ndarray, rate: int, container: str, codec: str, out_rate: int):
    samples = soxr.resample(wave, rate, out_rate).astype(np.float32)
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = out_rate
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=out_rate)
        for piece in resampler.resample(frame):
            for packet in stream.encode(piece):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return path


@pytest.fixture(scope="module")
def encoded(fsdd_recordings, tmp_path_factory):
    wave, rate = sf.read(fsdd_recordings / "7_jackson_0.wav", dtype="float32")
    folder = tmp_path_factory.mktemp("formats")
    return {name: encode(folder / f"seven.{name}", wave, rate, *spec) for name, spec in FORMATS.items()}


def test_every_format_classifies_through_the_cli(encoded, capsys):
    assert main(["classify", *map(str, encoded.values())]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[:2] for line in lines] == [[str(path), "7"] for path in encoded.values()]


def test_every_format_classifies_through_predict(encoded):
    from fastapi.testclient import TestClient

    from spokenword.inference.load import load_model
    from spokenword.serve import create_app

    with TestClient(create_app(load_model(), live=False)) as client:
        for name, path in encoded.items():
            answer = client.post("/predict", files={"file": (path.name, path.read_bytes(), "application/octet-stream")})
            assert answer.status_code == 200, (name, answer.text)
            assert answer.json()["label"] == "7", (name, answer.json())
        raw = client.post("/predict", content=encoded["webm"].read_bytes())  # the body itself, no form
        assert raw.status_code == 200 and raw.json()["label"] == "7"


def test_pyav_decoding_keeps_the_limit_and_the_blocks(encoded, tmp_path):
    path = encoded["m4a"]
    blocks = list(audio.stream(path, block_seconds=0.05))
    assert len(blocks) > 3 and all(rate == 16000 and b.shape[1] == 1 and len(b) <= 800 for b, rate in blocks)
    decoded = np.concatenate([b for b, _ in blocks])[:, 0]
    assert np.allclose(decoded, audio.read(path)[0][:, 0])  # the blocks are the whole signal, in order
    with pytest.raises(audio.TooLongError):
        audio.load(path, 8000, max_seconds=0.1)
    long = encode(tmp_path / "long.webm", np.zeros(8000 * 5, dtype=np.float32), 8000, "webm", "libopus", 48000)
    with pytest.raises(audio.TooLongError):
        list(audio.stream(long, max_seconds=2))
    assert len(audio.load(path.read_bytes(), 8000)) == len(audio.load(path, 8000))  # bytes, as /predict gets them
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(path.read_bytes()[:300])
    with pytest.raises(audio.AudioError) as caught:
        audio.load(broken, 8000)
    assert str(broken) in str(caught.value) and "\n" not in str(caught.value)


def test_without_pyav_the_error_names_the_extra(encoded):
    program = textwrap.dedent("""
        import sys
        sys.modules["av"] = None  # as if the formats extra were not installed
        from spokenword.cli import main
        print(main(["classify", *sys.argv[1:]]))
    """)
    result = subprocess.run([sys.executable, "-c", program, str(encoded["m4a"])], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.stdout.strip() == "1"
    assert result.stderr.count("\n") == 1 and "pip install 'spokenword[formats]'" in result.stderr
