"""scan / LabelledFolder: every way a folder of labelled recordings can be laid out."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokenword.data.corpora import DatasetError, LabelledFolder, Recording
from spokenword.data.corpora.folder import scan
from tests.conftest import tone, write_wav


def _touch(path: Path) -> Path:
    return write_wav(path, tone(0.1))


def test_manifest_csv_paths_are_relative_to_it_and_extra_columns_ignored(tmp_path):
    _touch(tmp_path / "clips" / "a.wav")
    _touch(tmp_path / "clips" / "b.flac")
    manifest = tmp_path / "set.csv"
    manifest.write_text("path,label,speaker,notes\nclips/a.wav,yes,ann,x\nclips/b.flac,no,,\n")
    assert scan(manifest) == [
        Recording(tmp_path / "clips" / "a.wav", "yes", "ann"),
        Recording(tmp_path / "clips" / "b.flac", "no", ""),
    ]


def test_labels_csv_inside_a_folder_wins(tmp_path):
    _touch(tmp_path / "x.wav")
    _touch(tmp_path / "3_theo_0.wav")  # FSDD-style name, but the manifest decides
    (tmp_path / "labels.csv").write_text("path,label\nx.wav,go\n")
    assert [(r.path.name, r.label) for r in scan(tmp_path)] == [("x.wav", "go")]


def test_one_sub_folder_per_label(tmp_path):
    _touch(tmp_path / "yes" / "abc123_nohash_0.wav")
    _touch(tmp_path / "no" / "def456_nohash_1.wav")
    (tmp_path / "no" / "notes.txt").write_text("not audio: ignored")
    found = scan(tmp_path)
    assert [(r.label, r.speaker, r.path.name) for r in found] == [
        ("no", "def456", "def456_nohash_1.wav"), ("yes", "abc123", "abc123_nohash_0.wav")]


def test_fsdd_names(tmp_path):
    _touch(tmp_path / "7_theo_12.wav")
    _touch(tmp_path / "0_george_3.wav")
    assert scan(tmp_path) == [
        Recording(tmp_path / "0_george_3.wav", "0", "george", 3),
        Recording(tmp_path / "7_theo_12.wav", "7", "theo", 12),
    ]


def test_labelled_folder_resolves_relative_to_the_data_root(tmp_path):
    _touch(tmp_path / "mine" / "1_ann_0.wav")
    assert [r.label for r in LabelledFolder("mine").recordings(tmp_path)] == ["1"]
    assert [r.label for r in LabelledFolder(str(tmp_path / "mine")).recordings(Path("/nowhere"))] == ["1"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("file,class\na.wav,1\n", "needs a header with 'path' and 'label'"),
     ("path,label\na.wav,\n", "line 2: empty path or label"),
     ("", "needs a header")],
)
def test_bad_manifests_are_named(tmp_path, content, message):
    manifest = tmp_path / "bad.csv"
    manifest.write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        scan(manifest)
    assert str(manifest) in str(info.value)


def test_unusable_locations(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        scan(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no audio files"):
        scan(tmp_path)
    _touch(tmp_path / "recording.wav")
    with pytest.raises(DatasetError, match="recording.wav: cannot tell its label"):
        scan(tmp_path)
    with pytest.raises(DatasetError, match="expected a folder or a manifest .csv"):
        scan(tmp_path / "recording.wav")
    (tmp_path / "latin1.csv").write_bytes(b"path,label\n\xe9.wav,1\n")
    with pytest.raises(DatasetError, match="cannot read manifest"):
        scan(tmp_path / "latin1.csv")
