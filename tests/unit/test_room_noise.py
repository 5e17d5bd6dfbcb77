"""Recorded room noise in training and in the accuracy benchmark (issue 36): each recording is cut by time
into the stretch training uses and the stretches benchmarks score on, one noise type is never trained on,
and the benchmark's SNR is measured over the speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from benchmarks import accuracy as bench
from spokenword.data.corpora import DatasetError, NoiseClips
from spokenword.data.corpora.negatives import NOISE_FOLDER, PARTITION, ROOM_NOISES, WORDS_FOLDER, stretch
from spokenword.data.wave_augment import WaveAugment, mix_at_snr

REPO = Path(__file__).resolve().parents[2]
SR = 8000


def tone(freq: float, seconds: float, sr: int = SR, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_power(wave: np.ndarray, low: float, high: float, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    f = np.fft.rfftfreq(len(wave), 1 / sr)
    return float(spectrum[(f >= low) & (f <= high)].sum())


@pytest.fixture
def rooms(tmp_path) -> Path:
    """A data root whose noise recordings are a 100 Hz hum for their first 70 %, 1 kHz for the next 15 %
    and 3 kHz for the last 15 % (so the stretch a noise came from can be heard), 10 s at 16 kHz."""
    folder = tmp_path / WORDS_FOLDER / NOISE_FOLDER
    folder.mkdir(parents=True)
    n = 10 * 16000
    wave = np.concatenate([tone(100, 7.0, 16000), tone(1000, 1.5, 16000), tone(3000, 1.5, 16000)])
    assert len(wave) == n
    for name in (*ROOM_NOISES, "white_noise"):
        sf.write(folder / f"{name}.wav", wave, 16000)
    return tmp_path


def test_stretches_cut_a_recording_by_time_without_overlap():
    wave = np.arange(1000)
    parts = [stretch(wave, s) for s in ("train", "val", "test")]
    assert np.array_equal(np.concatenate(parts), wave)  # disjoint and complete, in time order
    assert [len(p) for p in parts] == [int(PARTITION[0] * 1000), int(PARTITION[1] * 1000) - int(PARTITION[0] * 1000),
                                       1000 - int(PARTITION[1] * 1000)]
    with pytest.raises(ValueError, match="subset"):
        stretch(wave, "everything")


def test_noise_clips_leave_out_excluded_recordings(rooms, tmp_path):
    clips = NoiseClips(exclude=["running_tap"], clip_dir=str(tmp_path / "clips")).recordings(rooms)
    assert {r.speaker for r in clips} == {*ROOM_NOISES, "white_noise", "quiet"} - {"running_tap"}


def test_training_noise_comes_from_the_named_recordings_training_stretch(rooms):
    aug = WaveAugment(noise_p=1.0, noise_kinds=["white", "file"], noise_weights=[0, 1], snr_db=(0, 0),
                      noise_dir=f"{WORDS_FOLDER}/{NOISE_FOLDER}", noise_names=["dude_miaowing", "exercise_bike"],
                      noise_subset="train").bind(rooms)  # a relative noise_dir: from the data root
    assert [p.stem for p in aug.noise_files()] == ["dude_miaowing", "exercise_bike"]
    clean = tone(2000, 0.5)
    rng = np.random.default_rng(0)
    for _ in range(20):  # weight 0 for white: always the recording; never its validation or test stretch
        added = aug(clean, SR, rng) - clean
        assert band_power(added, 80, 120) > 100 * (band_power(added, 900, 1100) + band_power(added, 2900, 3100) + 1e-9)
    # the whole recording without noise_subset: its test stretch can be drawn
    whole = WaveAugment(noise_p=1.0, noise_kinds=["file"], snr_db=(0, 0), noise_dir=str(rooms / WORDS_FOLDER / NOISE_FOLDER),
                        noise_names=["running_tap"])
    heard = [band_power(whole(tone(2000, 2.0), SR, rng) - tone(2000, 2.0), 2900, 3100) for _ in range(40)]
    assert max(heard) > 1.0


def test_training_noise_settings_are_checked(rooms):
    with pytest.raises(ValueError, match="noise_weights"):
        WaveAugment(noise_kinds=["white", "pink"], noise_weights=[1.0])
    with pytest.raises(ValueError, match="noise_weights"):
        WaveAugment(noise_kinds=["white"], noise_weights=[0.0])
    missing = WaveAugment(noise_kinds=["file"], noise_dir=f"{WORDS_FOLDER}/{NOISE_FOLDER}", noise_names=["tap", "rain"])
    with pytest.raises(DatasetError, match="no recordings named rain, tap") as err:
        missing.bind(rooms).noise_files()
    assert "\n" not in str(err.value)


def test_snr_over_the_speech_ignores_the_silence_around_it():
    clean = np.concatenate([np.zeros(4000, np.float32), tone(440, 0.5), np.zeros(4000, np.float32)])
    noise = np.random.default_rng(0).standard_normal(len(clean))
    speech = clean[4000:8000]
    mixed = mix_at_snr(clean, noise, 10.0, speech=speech)
    added = mixed - clean
    assert 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(added**2)) == pytest.approx(10.0, abs=0.01)
    # over the whole clip (a third of it speech) the same noise would be 10*log10(3) = 4.8 dB quieter
    whole = mix_at_snr(clean, noise, 10.0) - clean
    assert 10 * np.log10(np.mean(added**2) / np.mean(whole**2)) == pytest.approx(4.77, abs=0.05)


def test_benchmark_noise_is_the_test_stretch_at_the_snr_over_the_speech(rooms):
    noises = bench.Noises(rooms, SR)
    clean = np.concatenate([np.zeros(2000, np.float32), tone(2000, 0.5), np.zeros(2000, np.float32)])
    for kind in ("rooms", "tap"):
        rng = np.random.default_rng(0)
        added = noises.mix(kind, clean, 10.0, rng) - clean
        assert band_power(added, 2900, 3100) > 100 * (band_power(added, 80, 120) + band_power(added, 900, 1100) + 1e-9)
        speech = clean[2000:6000]
        assert 10 * np.log10(np.mean(speech**2) / np.mean(added.astype(np.float64) ** 2)) == pytest.approx(10.0, abs=0.2)
    with pytest.raises(DatasetError, match="running_tap.wav is missing"):
        bench.Noises(rooms / "nowhere", SR).mix("tap", clean, 10.0, np.random.default_rng(0))


def _config(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / name).read_text())


def test_the_default_never_trains_on_the_benchmarks_unseen_noise_nor_on_test_stretches():
    assert set(bench.ROOMS) | {bench.UNSEEN} == set(ROOM_NOISES) and bench.UNSEEN not in bench.ROOMS
    cnn = _config("fsdd_cnn_newvoices.yaml")["data"]["wave_augment"]["init_args"]
    assert "file" in cnn["noise_kinds"] and cnn["noise_subset"] == "train"
    assert set(cnn["noise_names"]) == set(bench.ROOMS)
    corpora = _config("fsdd_embedding_newvoices.yaml")["data"]["corpus"]["init_args"]["corpora"]
    noise = [c for c in corpora if c["class_path"].endswith("NoiseClips")]
    assert noise and all(bench.UNSEEN in c.get("init_args", {}).get("exclude", []) for c in noise)
    for name in ("fsdd_cnn_newvoices.yaml", "fsdd_embedding_newvoices.yaml"):
        augment = (_config(name)["data"].get("wave_augment") or {}).get("init_args", {})
        if "file" in augment.get("noise_kinds", []):  # recorded noise: named recordings only, never the unseen one
            assert augment.get("noise_names") and bench.UNSEEN not in augment["noise_names"]
