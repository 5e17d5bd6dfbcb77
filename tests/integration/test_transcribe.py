"""Transcription of concatenated FSDD test recordings, through the Python API and the CLI."""

import json

import numpy as np
import pytest
import soundfile as sf

from spokenword import audio
from spokenword.cli import main
from spokenword.inference.checkpoint import Classifier
from spokenword.transcribe.segment import segments
from spokenword.transcribe.decode import Transcriber

pytestmark = pytest.mark.integration

FILES = ["3_jackson_0.wav", "1_jackson_1.wav", "4_jackson_2.wav", "1_jackson_3.wav"]


@pytest.fixture(scope="module")
def spoken_number(fsdd_recordings, tmp_path_factory):
    """``3141`` by one speaker with 200 ms pauses, as a 16 kHz stereo file."""
    gap = np.zeros(1600, np.float32)
    parts = [np.zeros(2400, np.float32)]
    for name in FILES:
        parts += [audio.load(fsdd_recordings / name, 8000), gap]
    wave = np.concatenate(parts)
    path = tmp_path_factory.mktemp("numbers") / "spoken number.wav"
    stereo = audio.prepare(wave, 8000, 16000)
    sf.write(path, np.stack([stereo, stereo], axis=1), 16000)
    return path, wave


def test_transcriber_finds_every_digit(trained_checkpoint, spoken_number, fsdd_recordings):
    path, wave = spoken_number
    classifier = Classifier.from_checkpoint(trained_checkpoint)
    result = Transcriber(classifier, threshold=0.0).transcribe(path)
    assert len(result.words) == len(FILES)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and all(w.end > w.start for w in result.words)
    expected = "".join(name[0] for name in FILES)
    # the 3-epoch fixture model is weak: compare with what it says about each file on its own
    alone = "".join(classifier(fsdd_recordings / name, top_k=1)[0]["label"] for name in FILES)
    assert sum(a == b for a, b in zip(result.text, alone)) >= 3
    assert sum(a == b for a, b in zip(result.text, expected)) >= 2


def number(fsdd_recordings, names, pause: float, rate: int = 8000) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The recordings ``names`` one after the other with ``pause`` s between them, and where each is."""
    parts, places, position = [np.zeros(int(0.3 * rate), np.float32)], [], int(0.3 * rate)
    for name in names:
        clip = audio.load(fsdd_recordings / name, rate)
        parts += [clip, np.zeros(int(pause * rate), np.float32)]
        places.append((position, position + len(clip)))
        position += len(clip) + int(pause * rate)
    return np.concatenate(parts), places


def test_words_found_where_the_recordings_are(trained_checkpoint, fsdd_recordings):
    wave, places = number(fsdd_recordings, FILES, pause=0.06)  # the shortest pauses the issue asks for
    words = Transcriber(trained_checkpoint, threshold=0.0).transcribe_samples(wave, 8000).words
    assert len(words) == len(FILES)
    for word, (start, stop) in zip(words, places):
        overlap = min(word.end * 8000, stop) - max(word.start * 8000, start)
        assert overlap >= 0.7 * (stop - start)


def test_digits_that_fall_apart_are_joined_again(trained_checkpoint, fsdd_recordings):
    """Test recordings of 6 and 8 whose level drops for long enough inside the word that the
    detector finds two regions in each (the release of the final stop): the transcriber joins
    the fragment to its word, so there is one word per digit."""
    apart = ["8_theo_2.wav", "6_theo_1.wav", "8_theo_4.wav"]
    pieces = []  # (start of the first, end of the second region) in each clip
    for name in apart:
        alone = np.concatenate([np.zeros(2400, np.float32), audio.load(fsdd_recordings / name, 8000), np.zeros(2400, np.float32)])
        found = segments(alone, 8000)
        assert len(found) == 2, name
        pieces.append((found[0].speech[0] - 2400, found[1].speech[1] - 2400))
    wave, places = number(fsdd_recordings, apart, pause=0.3)
    words = Transcriber(trained_checkpoint, threshold=0.0).transcribe_samples(wave, 8000).words
    assert len(words) == len(apart)
    for word, (start, _), (first, last) in zip(words, places, pieces):  # each word spans both pieces
        assert word.start * 8000 <= start + first and word.end * 8000 >= start + last


def test_number_in_noise_keeps_its_words(trained_checkpoint, spoken_number):
    """The same number in white noise at 10 dB SNR: every digit is still found, in its place (the
    detector's threshold follows the noise floor)."""
    _, wave = spoken_number
    transcriber = Transcriber(trained_checkpoint, threshold=0.0)
    clean = transcriber.transcribe_samples(wave, 8000).words
    speech = wave[np.abs(wave) > 1e-4]
    noise = np.random.default_rng(0).standard_normal(len(wave)).astype(np.float32)
    words = transcriber.transcribe_samples(wave + noise * np.sqrt(np.mean(speech**2) / 10), 8000).words
    assert len(words) == len(clean) == len(FILES)
    for word, reference in zip(words, clean):
        overlap = min(word.end, reference.end) - max(word.start, reference.start)
        assert overlap >= 0.6 * (reference.end - reference.start)


def test_in_memory_and_file_give_the_same_words(trained_checkpoint, spoken_number):
    path, wave = spoken_number
    transcriber = Transcriber(trained_checkpoint)
    from_file = transcriber.transcribe(path)
    from_memory = transcriber.transcribe_samples(wave, 8000)
    assert len(from_file.words) == len(from_memory.words)
    # the file is 16 kHz stereo: resampled back to 8 kHz, the same digits at the same places
    assert from_file.text == from_memory.text
    assert all(abs(a.start - b.start) <= 0.02 and abs(a.end - b.end) <= 0.02
               for a, b in zip(from_file.words, from_memory.words))


def test_low_scores_are_marked_not_guessed(trained_checkpoint, spoken_number):
    path, _ = spoken_number
    result = Transcriber(trained_checkpoint, threshold=1.01).transcribe(path)
    assert result.text == "?" * len(FILES)
    assert all(w.uncertain for w in result.words)


def test_cli_text_json_and_bad_file(trained_checkpoint, spoken_number, tmp_path, capsys):
    path, _ = spoken_number
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00not really a wav file")
    code = main(["transcribe", str(trained_checkpoint), str(path), str(corrupt)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith(f"{path}\t") and len(out.strip().split("\t")[1]) == len(FILES)
    assert "corrupt.wav" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1

    assert main(["transcribe", str(trained_checkpoint), str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[str(path)]
    assert len(result["words"]) == len(FILES)
    assert set(result["words"][0]) == {"label", "score", "start", "end", "uncertain"}
