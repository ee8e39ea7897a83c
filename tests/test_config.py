"""asd.config: one resolution order for every setting (flag, environment, default), immutable configs."""
from __future__ import annotations

import copy
import json
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from asd.config import ENVIRONMENT, Config, FeatureConfig, FitConfig, get_config, home, setting
from asd.data import DataError, clips_at, list_clips
from asd.experiment import data_source, describe_clips, describe_data
from asd.utils import resolve_device


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_flag_then_environment_then_default(name, monkeypatch):
    variable, default = ENVIRONMENT[name]
    monkeypatch.delenv(variable, raising=False)
    assert setting(name) == default
    monkeypatch.setenv(variable, "from-env")
    assert setting(name) == "from-env"
    assert setting(name, "from-flag") == "from-flag"
    monkeypatch.setenv(variable, "")  # an empty variable counts as unset
    assert setting(name) == default


def test_the_settings_reach_their_users(monkeypatch, tmp_path):
    monkeypatch.setenv("ASD_PROFILE", "full")
    assert get_config().profile == "full" and get_config("quick").profile == "quick"
    monkeypatch.setenv("ASD_DEVICE", "cpu")
    assert resolve_device().type == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")  # the flag wins over the environment
    monkeypatch.setenv("ASD_HOME", str(tmp_path / "h"))
    assert home() == tmp_path / "h"
    monkeypatch.delenv("ASD_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert home() == tmp_path / "xdg" / "asd"
    monkeypatch.setenv("ASD_DATA", str(tmp_path / "dev"))
    monkeypatch.setenv("ASD_EVAL_DATA", str(tmp_path / "eval"))
    with pytest.raises(DataError, match=f"ASD_DATA {tmp_path / 'dev'}: no such folder"):  # a typo: named
        data_source(get_config("quick"))
    (tmp_path / "dev").mkdir()
    with pytest.raises(DataError, match=f"ASD_EVAL_DATA {tmp_path / 'eval'}: no such folder"):
        data_source(get_config("quick"))
    (tmp_path / "eval").mkdir()
    src = data_source(get_config("quick"))
    assert (src.dev, src.eval, src.synthetic) == (tmp_path / "dev", tmp_path / "eval", False)
    assert src.label.startswith("real recordings")
    (tmp_path / "release" / "dev_data" / "slider" / "train").mkdir(parents=True)
    monkeypatch.setenv("ASD_DATA", str(tmp_path / "release"))
    assert data_source(get_config("quick")).label.startswith("real DCASE 2020 data")
    for name in ("dev_data", "eval_data"):  # a release root as asd download writes it: both sets found
        (tmp_path / "release" / name / "slider").mkdir(parents=True, exist_ok=True)
    src = data_source(get_config("quick"))
    assert (src.dev, src.eval) == (tmp_path / "release" / "dev_data", tmp_path / "eval")  # ASD_EVAL_DATA wins
    monkeypatch.delenv("ASD_EVAL_DATA")
    src = data_source(get_config("quick"))
    assert (src.dev, src.eval) == (tmp_path / "release" / "dev_data", tmp_path / "release" / "eval_data")
    assert src.label.startswith("real DCASE 2020 data")
    monkeypatch.delenv("ASD_DATA")
    monkeypatch.setenv("ASD_EVAL_DATA", str(tmp_path / "eval"))  # a real eval set beside the stand-in: refused
    with pytest.raises(ValueError, match=r"ASD_EVAL_DATA is set \(.*eval\) but ASD_DATA is not"):
        data_source(get_config("quick"))
    monkeypatch.chdir(tmp_path)
    assert describe_data(Path("release")) == f"real DCASE 2020 data ({tmp_path / 'release'})"  # outlives the cwd


def test_asd_data_pointing_at_the_stand_in_stays_synthetic(tmp_path, monkeypatch):
    """The stand-in written by asd synth and read through ASD_DATA is labelled synthetic, so that the
    chapters never draw the report's real-data values over it."""
    from asd import synth
    from asd.config import SplitCounts, SynthConfig

    tiny = SynthConfig(dev=SplitCounts(("00",), (1,), (1,), (1,)), eval=SplitCounts(("01",), (1,), (1,), (1,)),
                       duration_s=0.5)
    root = synth.generate(tmp_path / "s", tiny, seed=3, progress=False)
    monkeypatch.setenv("ASD_DATA", str(root / "dev_data"))
    src = data_source(get_config("quick"))
    assert src.synthetic and f"generator v{synth.VERSION}, seed 3" in src.label
    # its clips arranged as a plant's recordings (asd arrange links them): still synthetic
    from asd.recordings import arrange

    arrange([root / "dev_data" / "slider" / "train"], tmp_path / "plant", "press", "00")
    monkeypatch.setenv("ASD_DATA", str(tmp_path / "plant"))
    src = data_source(replace(get_config("quick"), machine="press"))
    assert src.synthetic and src.label.startswith(
        f"synthetic slider stand-in clips at {tmp_path / 'plant'}, linked from {root / 'dev_data'} "
        f"(generator v{synth.VERSION}, seed 3")
    (tmp_path / "own").mkdir()  # a recorder's own files, one level under a folder with a foreign .complete
    (tmp_path / "own" / ".complete").write_text('{"done": true}')
    (tmp_path / "own" / "rec").mkdir()
    shutil.copy(next((root / "dev_data" / "slider" / "train").glob("*.wav")), tmp_path / "own" / "rec" / "a.wav")
    arrange([tmp_path / "own" / "rec"], tmp_path / "real", "press", "00")
    assert describe_data(tmp_path / "real").startswith("real recordings")
    # clips scored by saved detectors: judged from the folder that holds them and those above it
    test = root / "dev_data" / "slider" / "test"
    assert describe_clips(list_clips(root / "dev_data", "slider", "test")) == (
        f"synthetic slider stand-in clips at {test} (generator v{synth.VERSION}, seed 3)")
    assert describe_clips(clips_at([tmp_path / "own" / "rec" / "a.wav"], "00")) == (
        f"real recordings ({tmp_path / 'own' / 'rec'})")  # a foreign .complete above does not count
    arranged = tmp_path / "real" / "press" / "train"  # links to the recorder's files: named as given
    assert describe_clips(clips_at([arranged], "00")) == (
        f"real recordings ({arranged}, linked from {tmp_path / 'own' / 'rec'})")
    assert describe_clips(clips_at([tmp_path / "plant" / "press" / "train"], "00")) == (
        f"synthetic slider stand-in clips at {tmp_path / 'plant' / 'press' / 'train'}, linked from "
        f"{root / 'dev_data' / 'slider' / 'train'} (generator v{synth.VERSION}, seed 3)")
    (tmp_path / "dcase" / "eval_data" / "slider" / "test").mkdir(parents=True)
    shutil.copy(tmp_path / "own" / "rec" / "a.wav", tmp_path / "dcase" / "eval_data" / "slider" / "test" / "b.wav")
    assert describe_clips(clips_at([tmp_path / "dcase" / "eval_data" / "slider" / "test"], "00")).startswith(
        "real DCASE 2020 data (")
    (tmp_path / "backup" / "dev_data" / "plant").mkdir(parents=True)  # a plant's clips under a folder of that name
    shutil.copy(tmp_path / "own" / "rec" / "a.wav", tmp_path / "backup" / "dev_data" / "plant" / "c.wav")
    assert describe_clips(clips_at([tmp_path / "backup" / "dev_data" / "plant"], "00")).startswith("real recordings (")
    assert describe_data(tmp_path / "backup" / "dev_data" / "plant").startswith("real recordings (")


@pytest.mark.parametrize(("counts", "match"), [
    ((("00", "02"), (3,), (1, 1), (1, 1)), r"train \(3,\): one clip count"),
    ((("00",), (3,), (-1,), (1,)), r"test_normal \(-1,\): one clip count"),
])
def test_split_counts_need_one_count_per_id(counts, match):
    from asd.config import SplitCounts

    with pytest.raises(ValueError, match=match):
        SplitCounts(*counts)


def test_unknown_profile_is_refused(monkeypatch):
    monkeypatch.setenv("ASD_PROFILE", "huge")
    with pytest.raises(ValueError, match="unknown profile 'huge' \\(from ASD_PROFILE\\)"):
        get_config()
    with pytest.raises(ValueError, match="unknown profile ''; choose"):  # given, not from the environment
        get_config("")


def test_config_is_the_full_profile_and_immutable():
    cfg = Config()
    assert cfg == get_config("full") and cfg.hash() == get_config("full").hash()
    with pytest.raises(TypeError, match="immutable"):
        cfg.fit["baseline"] = FitConfig(epochs=1, batch_size=1)
    with pytest.raises(TypeError, match="immutable"):
        cfg.report_ids["slider"] = ("00",)
    changed = replace(cfg, fit={**cfg.fit, "baseline": FitConfig(epochs=1, batch_size=10)})
    assert changed.fit["baseline"].epochs == 1 and cfg.fit["baseline"].epochs == 100
    assert changed.hash() != cfg.hash()
    for clone in (copy.deepcopy(cfg), pickle.loads(pickle.dumps(cfg))):
        assert clone == cfg and clone.hash() == cfg.hash()
    assert len({cfg, copy.deepcopy(cfg), changed}) == 2  # hashable, as a frozen dataclass


@pytest.mark.parametrize("cfg", [Config(), get_config("quick", precision="bf16").with_epochs(3),
                                 replace(Config(), beyond=replace(Config().beyond, pca_components=16))])
def test_config_survives_json_whole(cfg):
    again = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.hash() == cfg.hash()
    assert again.fit["sequential"] == cfg.fit["sequential"] and again.synth.dev.ids == cfg.synth.dev.ids


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="precision"):
        Config(precision="fp8")
    with pytest.raises(ValueError, match="pad_mode"):
        Config(feature=replace(Config().feature, pad_mode="wrap"))


@pytest.mark.parametrize(("field", "value"), [("backend", "scipy"), ("pad_mode", "zeros")])
def test_a_feature_config_refuses_an_unknown_backend_or_padding(field, value):
    with pytest.raises(ValueError, match=f"{field} must be one of .*, got '{value}'"):
        FeatureConfig(**{field: value})
