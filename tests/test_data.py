"""asd.data: file names, clip listing, counts and WAV loading on files written to tmp_path."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asd import cli
from asd.data import (UNLABELLED, Clip, DataError, clips_at, counts, first_per_id, list_clips, load_wav, name_order,
                      parse_name, time_order, unevaluable, unique_ids, unlike_lengths, wav_files)
from asd.recordings import arrange, cut

SR = 16000


def _tone(seconds: float, sr: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --- parse_name --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("normal_id_00_00000000.wav", (0, "00", 0)),
    ("anomaly_id_02_00000042.wav", (1, "02", 42)),
    ("normal_id_04_00000967.wav", (0, "04", 967)),
    ("anomaly_id_06_00000001.WAV", (1, "06", 1)),  # a recorder's upper-case suffix
])
def test_parse_name_good(name, expected):
    assert parse_name(Path("dev_data/slider/test") / name) == expected
    assert parse_name(name) == expected  # a plain string works too


@pytest.mark.parametrize("name", [
    "normal_id_0_00000000.wav",      # one-digit ID
    "abnormal_id_00_00000000.wav",   # unknown label
    "normal_id_00_00000000.flac",    # wrong extension
    "normal_id_00_.wav",             # no index
    "normal-id-00-00000000.wav",     # wrong separators
    "section_00_source_test_normal_0000.wav",  # DCASE 2021+ naming
])
def test_parse_name_bad(name):
    with pytest.raises(DataError, match=re.escape(name)) as info:
        parse_name(Path(name))
    assert "unlabelled" not in str(info.value)


def test_parse_name_eval_style_gives_hint():
    with pytest.raises(DataError, match="an unlabelled clip: its label comes from a ground-truth list") as info:
        parse_name(Path("eval_data/slider/test/id_01_00000000.wav"))
    assert "id_01_00000000.wav" in str(info.value)


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)


# --- list_clips / counts -----------------------------------------------------------------------


def _touch_wavs(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        sf.write(folder / name, np.zeros(1600, dtype=np.float32), SR, subtype="PCM_16")


def test_list_clips_sorted_by_id_label_index(tmp_path):
    names = ["anomaly_id_02_00000001.wav", "normal_id_02_00000010.wav", "normal_id_00_00000002.wav",
             "anomaly_id_00_00000000.wav", "normal_id_00_00000010.wav", "normal_id_02_00000009.wav"]
    _touch_wavs(tmp_path / "slider" / "test", names)
    (tmp_path / "slider" / "test" / "README.txt").write_text("not audio")  # ignored: not a .wav
    clips = list_clips(tmp_path, "slider", "test")
    got = [(c.machine_id, c.label_name, c.index) for c in clips]
    # numeric (not lexicographic) index order, normal (0) before anomaly (1) within an ID
    assert got == [("00", "normal", 2), ("00", "normal", 10), ("00", "anomaly", 0),
                   ("02", "normal", 9), ("02", "normal", 10), ("02", "anomaly", 1)]
    assert all(c.split == "test" for c in clips)
    assert all(c.path.parent == tmp_path / "slider" / "test" for c in clips)
    assert [c.label for c in clips] == [0, 0, 1, 0, 0, 1]
    assert unique_ids(clips) == ["00", "02"]


def test_first_per_id_keeps_each_ids_lowest_numbers_in_the_order_given(tmp_path):
    for name in ("normal_id_00_00000003.wav", "normal_id_00_00000001.wav", "normal_id_02_00000007.wav",
                 "normal_id_00_00000002.wav", "normal_id_02_00000004.wav"):
        (tmp_path / name).touch()
    clips = clips_at([tmp_path])  # 00: 1, 2, 3; 02: 4, 7
    shuffled = [clips[i] for i in (3, 0, 2, 4, 1)]
    kept = [(c.machine_id, c.index) for c in first_per_id(shuffled, 2)]
    assert kept == [("02", 4), ("00", 1), ("02", 7), ("00", 2)]  # the order given, 00's third left out
    assert [c.index for c in first_per_id(clips, 1)] == [1, 4]
    (tmp_path / "anomaly_id_00_00000001.wav").touch()  # a number twice: n clips all the same
    assert sorted(c.path.name for c in first_per_id(clips_at([tmp_path]), 2)) == [
        "anomaly_id_00_00000001.wav", "normal_id_00_00000001.wav", "normal_id_02_00000004.wav",
        "normal_id_02_00000007.wav"]
    assert first_per_id(clips, 99) == clips
    with pytest.raises(ValueError, match="at least 1 clip per ID, not 0"):
        first_per_id(clips, 0)


def test_list_clips_filters_by_ids(make_dataset, tmp_path):
    root = make_dataset(tmp_path, ids=("00", "02", "04"), n_train=2, n_test_normal=1, n_test_anomaly=1,
                        seconds=0.2)
    clips = list_clips(root, "slider", "train", ids=["02", "04"])
    assert unique_ids(clips) == ["02", "04"]
    assert len(clips) == 4
    assert unique_ids(list_clips(root, "slider", "test", ids=["00"])) == ["00"]
    with pytest.raises(DataError, match="for IDs 06"):
        list_clips(root, "slider", "train", ids=["06"])


def test_counts(make_dataset, tmp_path):
    root = make_dataset(tmp_path, ids=("00", "02"), n_train=3, n_test_normal=2, n_test_anomaly=1, seconds=0.2)
    clips = list_clips(root, "slider", "train") + list_clips(root, "slider", "test")
    assert counts(clips) == {
        ("00", "test", "anomaly"): 1, ("00", "test", "normal"): 2, ("00", "train", "normal"): 3,
        ("02", "test", "anomaly"): 1, ("02", "test", "normal"): 2, ("02", "train", "normal"): 3,
    }


def test_unlabelled_clips_are_listed_only_when_allowed_and_say_why_auc_is_undefined(tmp_path):
    _touch_wavs(tmp_path / "slider" / "test", ["id_00_00000001.wav", "id_00_00000000.wav",
                                               "normal_id_02_00000000.wav", "normal_id_02_00000001.wav"])
    with pytest.raises(DataError, match="id_00_0000000[01].wav: name does not match"):
        list_clips(tmp_path, "slider", "test")
    clips = list_clips(tmp_path, "slider", "test", unlabelled=True)
    assert [(c.machine_id, c.index, c.label, c.label_name) for c in clips] == [
        ("00", 0, UNLABELLED, "unlabelled"), ("00", 1, UNLABELLED, "unlabelled"),
        ("02", 0, 0, "normal"), ("02", 1, 0, "normal")]
    assert unevaluable(clips) == ["ID 00: 2 unlabelled clips", "ID 02: 2 normal and 0 anomalous clips (AUC needs both)"]
    assert unevaluable([]) == ["no test clips"]
    assert counts(clips)[("00", "test", "unlabelled")] == 2
    _touch_wavs(tmp_path / "slider" / "train", ["id_00_00000000.wav"])
    with pytest.raises(DataError, match="id_00_00000000.wav: a training clip is named normal_id_NN_NNNNNNNN.wav"):
        list_clips(tmp_path, "slider", "train", unlabelled=True)


def test_labelled_clips_of_both_kinds_are_evaluable(make_dataset, tmp_path):
    root = make_dataset(tmp_path, ids=("00", "02"), n_train=1, n_test_normal=1, n_test_anomaly=1, seconds=0.2)
    assert unevaluable(list_clips(root, "slider", "test", unlabelled=True)) == []


def test_clips_at_takes_files_and_folders_each_clip_once(tmp_path):
    _touch_wavs(tmp_path / "today", ["id_02_00000001.wav", "id_00_00000007.wav", "anomaly_id_00_00000003.wav"])
    (tmp_path / "today" / "notes.txt").write_text("not audio")
    one = tmp_path / "today" / "id_02_00000001.wav"
    clips = clips_at([one, tmp_path / "today"])
    assert [(c.path.name, c.label, c.split) for c in clips] == [
        ("id_00_00000007.wav", UNLABELLED, "test"), ("anomaly_id_00_00000003.wav", 1, "test"),
        ("id_02_00000001.wav", UNLABELLED, "test")]


def test_clips_at_names_what_it_cannot_use(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        clips_at([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no .wav clips"):
        clips_at([tmp_path / "empty"])
    _touch_wavs(tmp_path / "rec", ["2026-11-27_0800.wav"])
    with pytest.raises(DataError, match=r"2026-11-27_0800.wav: name does not match 'id_NN_NNNNNNNN.wav'.*--id NN"):
        clips_at([tmp_path / "rec"])
    _touch_wavs(tmp_path / "day1", ["id_00_00000000.wav"])
    _touch_wavs(tmp_path / "day2", ["id_00_00000000.wav"])
    with pytest.raises(DataError, match="two clips named id_00_00000000.wav .*day1.*day2.*one folder at a time"):
        clips_at([tmp_path / "day1", tmp_path / "day2"])


def test_clips_at_takes_a_recorders_own_names_as_one_machines_clips(tmp_path):
    _touch_wavs(tmp_path / "rec", ["2026-11-27_0800.wav", "2026-11-27_0700.wav", "id_00_00000003.wav"])
    clips = clips_at([tmp_path / "rec"], machine_id="00")
    assert [(c.path.name, c.machine_id, c.label) for c in clips] == [
        ("2026-11-27_0700.wav", "00", UNLABELLED), ("2026-11-27_0800.wav", "00", UNLABELLED),
        ("id_00_00000003.wav", "00", UNLABELLED)]
    _touch_wavs(tmp_path / "rec", ["normal_id_02_00000000.wav"])
    with pytest.raises(DataError, match="normal_id_02_00000000.wav: named for ID 02, not 00"):
        clips_at([tmp_path / "rec"], machine_id="00")


def test_a_recorders_count_is_read_as_numbers(tmp_path):
    # rec10 after rec9: the order clips are scored in, numbered in and their alarms raised in
    _touch_wavs(tmp_path / "rec", ["rec10.wav", "rec9.wav", "rec1.wav", "rec09b.wav"])
    clips = clips_at([tmp_path / "rec"], machine_id="00")
    assert [(c.path.name, c.index) for c in clips] == [
        ("rec1.wav", 0), ("rec9.wav", 1), ("rec09b.wav", 2), ("rec10.wav", 3)]
    made = arrange([tmp_path / "rec"], tmp_path / "data", "press", "00", split="test", label="unlabelled").made
    assert [(new.name, old.name) for new, old in made] == [
        ("id_00_00000000.wav", "rec1.wav"), ("id_00_00000001.wav", "rec9.wav"),
        ("id_00_00000002.wav", "rec09b.wav"), ("id_00_00000003.wav", "rec10.wav")]
    # numbers of equal width (the release's names, time stamps) keep the plain order
    release = [f"{label}_id_{mid}_{i:08d}.wav" for label in ("anomaly", "normal") for mid in ("00", "02")
               for i in (0, 9, 10, 123)] + ["2026-11-27_0700.wav", "2026-11-27_0800.wav", "2026-12-01_0000.wav"]
    assert sorted(release, key=name_order) == sorted(release)


def test_list_clips_missing_folder(tmp_path):
    with pytest.raises(DataError, match="folder not found") as info:
        list_clips(tmp_path, "slider", "train")
    assert str(tmp_path / "slider" / "train") in str(info.value)


@pytest.mark.parametrize("given, hint", [
    ("plant/press", "a machine's folder: try --data {t}/plant --machine press"),
    ("plant/press/train", "a split folder: try --data {t}/plant --machine press"),
    ("plant", "machine types in {t}/plant: press (--machine)"),
    ("dcase", "a release root: try --data {t}/dcase/eval_data"),  # asd download --set additional alone
])
def test_list_clips_missing_folder_says_where_the_data_may_be(tmp_path, given, hint):
    (tmp_path / "plant" / "press" / "train").mkdir(parents=True)
    (tmp_path / "dcase" / "eval_data" / "slider" / "train").mkdir(parents=True)
    (tmp_path / "dcase" / "dev_data" / "fan" / "train").mkdir(parents=True)  # another machine's: not named
    (tmp_path / "dcase" / "dev_data" / "slider" / "test").mkdir(parents=True)  # no train split: not named
    with pytest.raises(DataError, match="folder not found") as info:
        list_clips(tmp_path / given, "slider", "train")
    assert str(info.value).endswith(hint.format(t=tmp_path))


def test_list_clips_empty_folder(tmp_path):
    (tmp_path / "slider" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match="no .wav clips") as info:
        list_clips(tmp_path, "slider", "test")
    assert str(tmp_path / "slider" / "test") in str(info.value)


def test_list_clips_bad_file_name_names_the_file(tmp_path):
    _touch_wavs(tmp_path / "slider" / "train", ["normal_id_00_00000000.wav", "recording 3.wav"])
    with pytest.raises(DataError, match="recording 3.wav"):
        list_clips(tmp_path, "slider", "train")


def test_list_clips_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        list_clips(tmp_path, "slider", "validation")


# --- load_wav ----------------------------------------------------------------------------------


def test_load_wav_float32_mono(tmp_path):
    y = _tone(0.5, SR)
    path = tmp_path / "normal_id_00_00000000.wav"
    sf.write(path, y, SR, subtype="PCM_16")
    got = load_wav(path)
    assert got.dtype == np.float32 and got.ndim == 1 and got.shape == y.shape
    assert got.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(got, y, atol=1.0 / 2**15)  # 16-bit quantisation


def test_load_wav_stereo_keeps_first_channel(tmp_path):
    first, second = _tone(0.5, SR, 440.0), _tone(0.5, SR, 1000.0) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([first, second], axis=1), SR, subtype="PCM_16")
    with pytest.warns(UserWarning, match="clips of 2 channels: the first is used"):
        got = load_wav(path)
    assert got.shape == first.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, first, atol=1.0 / 2**15)
    assert np.abs(got - second).max() > 0.1  # not the second channel, not a mix
    sf.write(path, np.stack([np.zeros_like(first), second], axis=1), SR, subtype="PCM_16")
    with pytest.warns(UserWarning), pytest.raises(DataError, match=r"channel 1 of 2 \(the one used\): silent"):
        load_wav(path)  # not "a broken file": the signal is on another channel


def test_load_wav_resamples_44k_with_warning(tmp_path):
    sr = 44100
    path = tmp_path / "cd.wav"
    sf.write(path, _tone(1.0, sr, 440.0), sr, subtype="PCM_16")
    with pytest.warns(UserWarning, match="44100"):
        got = load_wav(path, sample_rate=SR)
    assert got.dtype == np.float32
    assert abs(len(got) - SR) <= 1  # 1 s of audio is 16000 samples after resampling
    # the tone survives: its spectral peak is still at 440 Hz
    spectrum = np.abs(np.fft.rfft(got))
    assert abs(np.argmax(spectrum) * SR / len(got) - 440.0) < 2.0


def test_load_wav_warns_about_a_sample_rate_once_not_once_per_clip(tmp_path):
    paths = [tmp_path / f"cd{i}.wav" for i in range(3)]
    for path in paths:
        sf.write(path, _tone(0.2, 44100), 44100, subtype="PCM_16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own rule: a repeated warning is shown once
        for path in paths:
            load_wav(path, sample_rate=SR)
    assert [str(w.message) for w in caught] == ["clips at 44100 Hz are resampled to 16000 Hz"]


def test_load_wav_no_warning_at_native_rate(tmp_path):
    path = tmp_path / "native.wav"
    sf.write(path, _tone(0.2, SR), SR, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_wav(path)


def test_load_wav_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "normal_id_00_00000000.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match="cannot read audio") as info:
        load_wav(path)
    assert str(path) in str(info.value)


def test_load_wav_zero_length_names_the_file(tmp_path):
    path = tmp_path / "normal_id_00_00000001.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR, subtype="PCM_16")
    assert path.stat().st_size > 0  # a valid header with no samples
    with pytest.raises(DataError) as info:
        load_wav(path)
    assert str(path) in str(info.value)


def test_load_wav_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(DataError, match="nope.wav"):
        load_wav(path)


def _recorder(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        sf.write(folder / name, (0.1 * rng.standard_normal(1600)).astype(np.float32), 16000)
    return [folder / name for name in names]


def test_arrange_links_a_recorders_files_under_release_names_and_adds_new_ones_later(tmp_path):
    first = _recorder(tmp_path / "rec", ["2026-11-01 08h00.wav", "2026-11-01 09h00.wav"])
    done = arrange([tmp_path / "rec"], tmp_path / "data", "press", "03")
    made, skipped = done.made, done.skipped
    assert skipped == 0 and [p.name for p, _ in made] == ["normal_id_03_00000000.wav", "normal_id_03_00000001.wav"]
    assert all(p.is_symlink() and p.resolve() == src.resolve() for p, src in made)
    assert [src for _, src in made] == first
    later = _recorder(tmp_path / "rec", ["ZOOM0003.WAV"])  # a recorder's capitals
    again = arrange([tmp_path / "rec"], tmp_path / "data", "press", "03")  # the folder again
    made, skipped = again.made, again.skipped
    assert skipped == 2 and [p.name for p, _ in made] == ["normal_id_03_00000002.wav"]
    names = (tmp_path / "data" / "press" / "train_names.csv").read_text().splitlines()
    assert names[-1] == f"normal_id_03_00000002.wav,{later[0].absolute()}" and len(names) == 3
    clips = list_clips(tmp_path / "data", "press", "train")
    assert [(c.machine_id, c.label, c.index) for c in clips] == [("03", 0, 0), ("03", 0, 1), ("03", 0, 2)]
    new = _recorder(tmp_path / "new", ["a.wav"])
    made = arrange(new, tmp_path / "data", "press", "03", split="test", label="unlabelled", copy=True).made
    assert made[0][0].name == "id_03_00000000.wav" and not made[0][0].is_symlink()
    assert made[0][0].read_bytes() == new[0].read_bytes()


def test_arrange_refuses_a_recording_in_both_train_and_test(tmp_path):
    """A clip trained on scores low as a test clip: the detector would look better than it is."""
    trained = _recorder(tmp_path / "rec", ["a.wav", "b.wav"])
    arrange(trained, tmp_path / "data", "press", "03")
    with pytest.raises(DataError, match=r"b.wav: already arranged into train \(.*train_names.csv\)"):
        arrange([trained[1]], tmp_path / "data", "press", "03", split="test")
    assert not (tmp_path / "data" / "press" / "test").exists()
    tested = _recorder(tmp_path / "check", ["c.wav"])
    arrange(tested, tmp_path / "data", "press", "03", split="test", label="anomaly")
    with pytest.raises(DataError, match="c.wav: already arranged into test"):
        arrange([tmp_path / "check"], tmp_path / "data", "press", "03")


@pytest.mark.parametrize("kwargs, message", [
    ({"machine_id": "3"}, "two digits"),
    ({"machine_id": "03", "machine": ".."}, "a machine type is a folder name"),
    ({"machine_id": "03", "machine": "pr/ess"}, "a machine type is a folder name"),
    ({"machine_id": "03", "label": "anomaly"}, "training clips are normal"),
    ({"machine_id": "03", "split": "test", "label": "broken"}, "label must be normal, anomaly or unlabelled"),
])
def test_arrange_refuses_what_asd_run_could_not_read(tmp_path, kwargs, message):
    sources = _recorder(tmp_path / "rec", ["a.wav"])
    with pytest.raises(DataError, match=message):
        arrange(sources, tmp_path / "data", **{"machine": "press", **kwargs})
    with pytest.raises(DataError, match="no such file or folder"):
        arrange([tmp_path / "missing.wav"], tmp_path / "data", "press", "03")
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(DataError, match="notes.wav: cannot read audio"):
        arrange([*sources, tmp_path / "notes.wav"], tmp_path / "data", "press", "03")
    assert not (tmp_path / "data" / "press" / "train").exists()  # nothing linked


def test_arrange_refuses_its_own_folder_and_a_broken_names_list(tmp_path):
    arrange(_recorder(tmp_path / "rec", ["a.wav"]), tmp_path / "data", "press", "00")
    with pytest.raises(DataError, match="already in the folder"):  # would link the clips to themselves
        arrange([tmp_path / "data" / "press" / "train"], tmp_path / "data", "press", "00")
    (tmp_path / "data" / "press" / "train_names.csv").write_text("normal_id_00_00000000.wav\n")
    with pytest.raises(DataError, match=r"train_names.csv:1: expected 'name,original'"):
        arrange([tmp_path / "rec"], tmp_path / "data", "press", "00")


def test_arrange_knows_a_recording_however_its_path_is_spelled(tmp_path):
    """rec/../rec/a.wav and a link to the folder name the same recording: arranged once, and
    refused for the other split."""
    _recorder(tmp_path / "rec", ["a.wav", "b.wav"])
    (tmp_path / "alias").symlink_to(tmp_path / "rec")
    done = arrange([tmp_path / "rec", tmp_path / "rec" / ".." / "rec" / "a.wav"], tmp_path / "data", "press", "00")
    assert len(done.made) == 2 and done.skipped == 1
    done = arrange([tmp_path / "alias", tmp_path / "rec" / ".." / "rec"], tmp_path / "data", "press", "00")
    assert done.made == [] and done.skipped == 4
    with pytest.raises(DataError, match="already arranged into train"):
        arrange([tmp_path / "alias" / "b.wav"], tmp_path / "data", "press", "00", split="test")


def test_arrange_after_an_interrupted_run_adds_no_duplicate(tmp_path):
    """Each clip's line is written as it is made; a link made just before an interruption, its line
    not yet written, counts as arranged (and is listed) on the next run."""
    sources = _recorder(tmp_path / "rec", ["a.wav", "b.wav", "c.wav"])
    arrange(sources[:2], tmp_path / "data", "press", "00")
    names = tmp_path / "data" / "press" / "train_names.csv"
    names.write_text(names.read_text().splitlines(keepends=True)[0])  # b.wav's line lost
    done = arrange([tmp_path / "rec"], tmp_path / "data", "press", "00")
    assert [(p.name, src.name) for p, src in done.made] == [("normal_id_00_00000002.wav", "c.wav")]
    assert [line.split(",")[1] for line in names.read_text().splitlines()] == [str(p) for p in sources]
    assert len(list_clips(tmp_path / "data", "press", "train")) == 3


def test_arrange_points_links_at_moved_recordings(tmp_path, capsys):
    arrange(_recorder(tmp_path / "rec", ["a.wav", "b.wav"]), tmp_path / "data", "press", "00")
    (tmp_path / "rec").rename(tmp_path / "moved")
    _recorder(tmp_path / "moved", ["c.wav"])  # and a new recording beside them
    done = arrange([tmp_path / "moved"], tmp_path / "data", "press", "00")
    assert [(p.name, src.name) for p, src in done.relinked] == [
        ("normal_id_00_00000000.wav", "a.wav"), ("normal_id_00_00000001.wav", "b.wav")]
    assert [(p.name, src.name) for p, src in done.made] == [("normal_id_00_00000002.wav", "c.wav")]
    assert done.skipped == 0 and done.missing == []
    clips = list_clips(tmp_path / "data", "press", "train")
    moved = [(tmp_path / "moved" / n).resolve() for n in ("a.wav", "b.wav", "c.wav")]
    assert [c.path.resolve() for c in clips] == moved
    names = (tmp_path / "data" / "press" / "train_names.csv").read_text()
    assert f"{tmp_path / 'rec'}/" not in names and names.count(f"{tmp_path / 'moved'}/") == 3
    # a recording moved and not given stays missing: named by the command line, which goes on
    (tmp_path / "moved" / "b.wav").rename(tmp_path / "b.wav")
    with pytest.warns(UserWarning, match=r"normal_id_00_00000001.wav: link to a missing file \(.*moved/b.wav\)"):
        assert cli.main(["arrange", str(tmp_path / "moved"), "--out", str(tmp_path / "data"), "--machine", "press",
                         "--id", "00"]) == 0
    assert "2 already arranged: skipped" in capsys.readouterr().out


def test_arrange_repairs_only_links_of_its_own_id_and_label(tmp_path):
    """Recorders reuse file names: a new REC0001.wav of ID 01 is not the moved one of ID 00."""
    arrange(_recorder(tmp_path / "card1", ["REC0001.wav"]), tmp_path / "data", "press", "00")
    (tmp_path / "card1" / "REC0001.wav").unlink()
    done = arrange(_recorder(tmp_path / "card2", ["REC0001.wav"]), tmp_path / "data", "press", "01")
    assert done.relinked == [] and [p.name for p, _ in done.made] == ["normal_id_01_00000000.wav"]
    assert [p.name for p in done.missing] == ["normal_id_00_00000000.wav"]
    assert not (tmp_path / "data" / "press" / "train" / "normal_id_00_00000000.wav").exists()


def test_arrange_with_copy_repairs_a_moved_link_with_a_copy(tmp_path):
    arrange(_recorder(tmp_path / "rec", ["a.wav"]), tmp_path / "data", "press", "00")
    (tmp_path / "rec").rename(tmp_path / "moved")
    done = arrange([tmp_path / "moved"], tmp_path / "data", "press", "00", copy=True)
    clip = tmp_path / "data" / "press" / "train" / "normal_id_00_00000000.wav"
    assert [p for p, _ in done.relinked] == [clip] and not clip.is_symlink()
    assert clip.read_bytes() == (tmp_path / "moved" / "a.wav").read_bytes()
    assert sorted(p.name for p in clip.parent.iterdir()) == [clip.name]  # no partial copy left beside it


def test_arrange_with_copy_knows_its_copies_once_their_originals_moved(tmp_path):
    """An SD card mounted at a new path: its recordings, copied before, are not copied again."""
    arrange(_recorder(tmp_path / "card", ["a.wav", "b.wav"]), tmp_path / "data", "press", "00", copy=True)
    (tmp_path / "card").rename(tmp_path / "mounted")
    _recorder(tmp_path / "mounted", ["c.wav"])  # a new recording beside them
    (tmp_path / "other").mkdir()
    (tmp_path / "mounted" / "b.wav").rename(tmp_path / "other" / "b.wav")
    sf.write(tmp_path / "mounted" / "b.wav", np.zeros(1600, np.float32) + 0.1, 16000)  # a new b.wav, other sound
    done = arrange([tmp_path / "mounted"], tmp_path / "data", "press", "00", copy=True)
    made = [(p.name, src.name) for p, src in done.made]
    assert made == [("normal_id_00_00000002.wav", "b.wav"), ("normal_id_00_00000003.wav", "c.wav")]
    assert done.skipped == 1 and done.relinked == []  # a.wav: the same bytes as its copy
    names = (tmp_path / "data" / "press" / "train_names.csv").read_text().splitlines()
    assert names[0] == f"normal_id_00_00000000.wav,{tmp_path / 'mounted' / 'a.wav'}"  # listed at its new place


def test_arrange_names_the_clip_a_recording_was_arranged_as_under_another_id(tmp_path):
    rec = _recorder(tmp_path / "rec", ["a.wav"])
    arrange(rec, tmp_path / "data", "press", "00")
    with pytest.raises(DataError, match=r"a.wav: already arranged as normal_id_00_00000000.wav \(.*train_names"):
        arrange(rec, tmp_path / "data", "press", "02")
    assert arrange(rec, tmp_path / "data", "press", "00").skipped == 1  # the same ID: skipped, as before


def test_a_moved_recording_is_named_not_a_traceback(tmp_path):
    """asd arrange links by default: moving the recorder's folder leaves links to missing files."""
    arrange(_recorder(tmp_path / "rec", ["a.wav", "b.wav"]), tmp_path / "data", "press", "00")
    (tmp_path / "rec").rename(tmp_path / "moved")
    for call in (lambda: list_clips(tmp_path / "data", "press", "train"),
                 lambda: wav_files([tmp_path / "data" / "press" / "train"])):
        with pytest.raises(DataError, match=r"normal_id_00_00000000.wav and 1 more: link to a missing file "
                                            r"\(.*rec/a.wav\): .* give their new folder to asd arrange"):
            call()


def test_list_clips_reads_capital_wav_suffixes(tmp_path):
    folder = tmp_path / "slider" / "train"
    folder.mkdir(parents=True)
    sf.write(folder / "normal_id_00_00000000.WAV", _tone(0.2, SR), SR)
    [clip] = list_clips(tmp_path, "slider", "train")
    assert (clip.label, clip.machine_id, clip.path.name) == (0, "00", "normal_id_00_00000000.WAV")


def test_time_order_numbers_labels_together_where_they_were_numbered_together():
    clip = lambda name, mid="00": Clip(Path(name), "test", 0, mid, 0)  # noqa: E731
    arranged = [clip(n) for n in ("anomaly_id_00_00000002.wav", "anomaly_id_00_00000004.wav",
                                  "normal_id_00_00000000.wav", "normal_id_00_00000001.wav",
                                  "normal_id_00_00000003.wav")]  # as listed: label by label
    assert time_order(arranged) == [2, 3, 0, 4, 1]
    release = [clip(n) for n in ("anomaly_id_00_00000000.wav", "anomaly_id_00_00000001.wav",
                                 "normal_id_00_00000000.wav")]  # numbered apart: no common order
    assert time_order(release) == [0, 1, 2]
    recorder = [clip("press_000010s.wav", "02"), clip("press_000000s.wav", "02"), clip("id_00_00000007.wav")]
    assert time_order(recorder) == [2, 1, 0]  # ID by ID; a recorder's names in name order


def test_hidden_files_a_mac_leaves_beside_clips_are_not_clips(tmp_path):
    folder = tmp_path / "slider" / "train"
    folder.mkdir(parents=True)
    sf.write(folder / "normal_id_00_00000000.wav", _tone(0.2, SR), SR)
    (folder / "._normal_id_00_00000000.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    [clip] = list_clips(tmp_path, "slider", "train")
    assert clip.path.name == "normal_id_00_00000000.wav"
    assert wav_files([folder]) == [folder / "normal_id_00_00000000.wav"]


@pytest.mark.parametrize("signal, message", [
    (np.zeros(1600), r"silent \(every sample 0\)"),
    (np.r_[np.full(100, np.nan), np.ones(1500) * 0.1], "100 samples are NaN or infinite"),
    (_tone(0.1, SR) * 32767, "samples up to 16383.5, where audio lies within -1..1: a float WAV written at integer"),
    (_tone(0.1, SR) * 1e18, "samples up to 5e\\+17, where audio lies"),
])
def test_load_wav_refuses_silent_non_finite_and_out_of_scale_audio(tmp_path, signal, message):
    path = tmp_path / "normal_id_00_00000000.wav"
    sf.write(path, signal.astype(np.float32), SR, subtype="FLOAT")
    with pytest.raises(DataError, match=message):
        load_wav(path)


def test_load_wav_warns_about_digital_silence_in_a_clip(tmp_path):
    """A dropout or zero padding: a recorder's noise floor is never exactly zero for long."""
    y = 0.1 * np.random.default_rng(0).standard_normal(SR)
    path = tmp_path / "normal_id_00_00000000.wav"
    sf.write(path, np.r_[y, np.zeros(SR // 4)].astype(np.float32), SR, subtype="PCM_16")
    with pytest.warns(UserWarning, match=r"normal_id_00_00000000.wav: 0.25 s of digital silence \(exact zeros"):
        load_wav(path)
    sf.write(path, np.r_[y, np.zeros(SR // 4 - 1)].astype(np.float32), SR, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_wav(path)


@pytest.mark.parametrize("subtype, dtype", [("PCM_16", "int16"), ("PCM_24", "int32"), ("FLOAT", "float32")])
def test_cut_splits_a_recording_into_clips_that_hold_its_own_samples(tmp_path, subtype, dtype):
    rng = np.random.default_rng(0)
    (tmp_path / "rec").mkdir()
    y = 0.5 * rng.uniform(-1, 1, (int(23.5 * 8000), 2))  # 23.5 s, 2 channels, at 8 kHz
    sf.write(tmp_path / "rec" / "press.wav", y, 8000, subtype=subtype)
    done = cut([tmp_path / "rec"], tmp_path / "clips", seconds=5)
    # 5-s pieces from 0, 5, 10, 15 s; the last, 3.5 s, over half a clip: kept
    assert [p.name for p in done.made] == [f"press_0000{s:02d}s.wav" for s in (0, 5, 10, 15, 20)]
    original = sf.read(tmp_path / "rec" / "press.wav", dtype=dtype)[0]
    pieces = [sf.read(p, dtype=dtype)[0] for p in done.made]
    assert np.array_equal(np.concatenate(pieces), original)
    assert [len(p) for p in pieces] == [40000] * 4 + [28000]
    info = sf.info(done.made[0])
    assert (info.samplerate, info.channels, info.subtype) == (8000, 2, subtype)
    assert done.kept == 0 and done.short == []
    # 10-s pieces: the last, 3.5 s, under half a clip, is dropped; cut again, the pieces there are kept
    done = cut([tmp_path / "rec" / "press.wav"], tmp_path / "ten")
    assert [p.name for p in done.made] == ["press_000000s.wav", "press_000010s.wav"]
    assert done.short == [tmp_path / "rec" / "press.wav"]
    sf.write(tmp_path / "rec" / "later.wav", y[:80000], 8000, subtype=subtype)
    again = cut([tmp_path / "rec"], tmp_path / "ten")
    assert [p.name for p in again.made] == ["later_000000s.wav"] and again.kept == 2
    assert not list((tmp_path / "ten").glob(".*"))  # no part files left behind


@pytest.mark.parametrize("name, fmt, subtype", [("phone.ogg", "OGG", "VORBIS"), ("rec.wav", "WAV", "IMA_ADPCM"),
                                                ("old.wav", "WAV", "PCM_U8")])
def test_cut_writes_other_encodings_as_float_pieces_and_keeps_them_when_cut_again(tmp_path, name, fmt, subtype):
    """A phone's Vorbis, a recorder's ADPCM, 8-bit PCM: decoded to float and written so, whole
    pieces that a second cut recognises (an ADPCM piece would be padded to its block size)."""
    if subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile cannot write {fmt} {subtype}")
    (tmp_path / "rec").mkdir()
    y = 0.3 * np.random.default_rng(0).uniform(-1, 1, 12 * 8000)  # 12 s at 8 kHz
    sf.write(tmp_path / "rec" / name, y, 8000, format=fmt, subtype=subtype)
    done = cut([tmp_path / "rec" / name], tmp_path / "clips", seconds=5)  # a folder's are its .wav files
    assert [p.name for p in done.made] == [f"{Path(name).stem}_0000{s:02d}s.wav" for s in (0, 5)]
    assert {sf.info(p).subtype for p in done.made} == {"FLOAT"}
    decoded = sf.read(tmp_path / "rec" / name, dtype="float32")[0]
    assert np.array_equal(np.concatenate([sf.read(p, dtype="float32")[0] for p in done.made]), decoded[:80000])
    again = cut([tmp_path / "rec" / name], tmp_path / "clips", seconds=5)
    assert again.made == [] and again.kept == 2


def test_cut_refuses_a_recording_whose_header_was_never_finished(tmp_path):
    """A recorder that lost power leaves the header's sizes at 0: the audio is there, unread."""
    (tmp_path / "rec").mkdir()
    path = tmp_path / "rec" / "press.wav"
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(8000 * 3), 8000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    data = raw.find(b"data")
    raw[4:8] = raw[data + 4:data + 8] = bytes(4)
    path.write_bytes(bytes(raw))
    if sf.info(path).frames != 0:
        pytest.skip("this libsndfile reads the samples of such a file")
    with pytest.raises(DataError, match=r"press.wav: its header says 0 samples, but the file holds 48,044 bytes"):
        cut([tmp_path / "rec"], tmp_path / "clips", seconds=1)
    assert not (tmp_path / "clips").exists()


def test_cut_refuses_an_encoding_it_cannot_read_from_the_middle(tmp_path):
    if "GSM610" not in sf.available_subtypes("WAV"):
        pytest.skip("this libsndfile cannot write GSM 6.10")
    (tmp_path / "rec").mkdir()
    sf.write(tmp_path / "rec" / "phone.wav", 0.1 * np.random.default_rng(0).standard_normal(8000 * 12), 8000,
             subtype="GSM610")
    with pytest.raises(DataError, match=r"phone.wav: its encoding \(GSM610\) cannot be read from the middle"):
        cut([tmp_path / "rec"], tmp_path / "clips", seconds=5)
    assert not (tmp_path / "clips").exists()  # refused before anything is written


def test_arrange_refuses_a_recording_with_a_line_break_in_its_name(tmp_path):
    (tmp_path / "rec").mkdir()
    sf.write(tmp_path / "rec" / "two\nlines.wav", _tone(0.2, SR), SR)
    with pytest.raises(DataError, match=r"a line break in its path, which the names list .* cannot hold: rename it"):
        arrange([tmp_path / "rec"], tmp_path / "plant", "press", "00")
    assert not (tmp_path / "plant").exists()


def test_cut_refuses_what_it_cannot_cut_well(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "press.wav", _tone(2.0, SR), SR)
    with pytest.raises(DataError, match=r"two recordings named press \("):
        cut([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(DataError, match="already in .*the folder the pieces go to"):
        cut([tmp_path / "a"], tmp_path / "a")
    with pytest.raises(DataError, match="at least 1"):
        cut([tmp_path / "a"], tmp_path / "out", seconds=0)
    with pytest.raises(DataError, match=r"press.wav: shorter than half a clip of 5 s: nothing to cut"):
        cut([tmp_path / "a"], tmp_path / "out", seconds=5)
    (tmp_path / "a" / "broken.wav").write_text("not audio")
    with pytest.raises(DataError, match="broken.wav: cannot read audio"):
        cut([tmp_path / "a"], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing cut before every recording was read


def test_cut_again_refuses_a_new_recording_named_as_an_old_one(tmp_path):
    """A recorder that counts anew on each card names day 2's first recording as day 1's."""
    for day, freq in (("day1", 440.0), ("day2", 550.0)):
        (tmp_path / day).mkdir()
        sf.write(tmp_path / day / "ZOOM0001.WAV", _tone(25.0, SR, freq), SR)
        sf.write(tmp_path / day / "ZOOM0002.WAV", _tone(25.0, SR, freq), SR)
    first = cut([tmp_path / "day1"], tmp_path / "clips")
    assert len(first.made) == 6
    made = {p: p.stat().st_mtime_ns for p in first.made}
    with pytest.raises(DataError, match=r"ZOOM0001_000000s.wav: already there, but not the piece of .*day2/ZOOM0001"
                                        r".WAV from 0 s \(another recording of the same name"):
        cut([tmp_path / "day2"], tmp_path / "clips")
    with pytest.raises(DataError, match=r"ZOOM0001_000000s.wav: already there, .*or cut with another --seconds"):
        cut([tmp_path / "day1"], tmp_path / "clips", seconds=5)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "clips").iterdir()} == made  # nothing written
    assert cut([tmp_path / "day1"], tmp_path / "clips").kept == 6  # the same recordings again: kept


def test_cut_again_writes_the_last_piece_of_a_recording_that_grew_whole(tmp_path):
    """A recorder still writing its file: the last, short piece of the first cut grows with it."""
    (tmp_path / "rec").mkdir()
    y = _tone(35.0, SR)
    sf.write(tmp_path / "rec" / "live.wav", y[: 25 * SR], SR)
    assert [p.name for p in cut([tmp_path / "rec"], tmp_path / "clips").made][-1] == "live_000020s.wav"
    assert sf.info(tmp_path / "clips" / "live_000020s.wav").duration == 5.0
    sf.write(tmp_path / "rec" / "live.wav", y, SR)  # ten seconds more
    again = cut([tmp_path / "rec"], tmp_path / "clips")
    assert [p.name for p in again.made] == ["live_000020s.wav", "live_000030s.wav"] and again.kept == 2
    pieces = [sf.read(tmp_path / "clips" / f"live_{s:06d}s.wav", dtype="int16")[0] for s in (0, 10, 20, 30)]
    assert np.array_equal(np.concatenate(pieces), sf.read(tmp_path / "rec" / "live.wav", dtype="int16")[0])
    with pytest.raises(DataError, match="live_000000s.wav: already there, .*or cut with another --seconds"):
        cut([tmp_path / "rec"], tmp_path / "clips", seconds=20)  # a whole piece shorter than a new one


def test_unlike_lengths_names_the_clips_far_from_the_training_length(tmp_path):
    for name, seconds in (("id_00_00000000.wav", 10), ("id_00_00000001.wav", 9), ("id_00_00000002.wav", 30),
                          ("id_00_00000003.wav", 0.5)):
        sf.write(tmp_path / name, _tone(seconds, SR), SR)
    clips = clips_at([tmp_path])
    assert unlike_lengths(clips[:2], 10.0, "test clips") is None  # within a factor 2
    message = unlike_lengths(clips, 10.0, "test clips")
    assert message.startswith("2 of 4 test clips are not about 10 s long")
    assert "e.g. id_00_00000003.wav (0.5 s)" in message and "asd cut --seconds 10" in message  # the farthest
