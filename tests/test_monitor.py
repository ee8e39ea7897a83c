"""The alarm state asd score carries between calls, and which clips are new (real files in tmp dirs)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asd import monitor
from asd.data import DataError, clips_at


def _clips(folder, names, seconds=1.0):
    folder.mkdir(exist_ok=True)
    for name in names:
        sf.write(folder / name, np.zeros(int(16000 * seconds), np.float32), 16000)
    return clips_at([folder])


def test_new_clips_are_those_after_the_last_one_counted_per_id(tmp_path):
    clips = _clips(tmp_path / "c", [f"id_{mid}_{i:08d}.wav" for mid in ("00", "02") for i in range(4)])
    state = {"alarm_after": 2, "detectors": {
        "pca": {"00": {"run": 1, "last_clip": "id_00_00000001.wav"}},
        "sequential": {"00": {"run": 0, "last_clip": "id_00_00000002.wav"}}}}
    new, counted = monitor.new_clips(clips, state, ["pca", "sequential"])
    assert [c.path.name for c in new] == ["id_00_00000003.wav", *(f"id_02_{i:08d}.wav" for i in range(4))]
    assert len(counted) == 3
    assert monitor.carried(state, "pca") == {"00": 1} and monitor.carried(None, "pca") == {}
    with pytest.raises(DataError, match="sequential counted ID 00's clips up to id_00_00000002.wav"):
        monitor.check_after_counted(state, clips, ["pca", "sequential"], tmp_path / "state.json")
    monitor.check_after_counted(state, new, ["pca", "sequential"], tmp_path / "state.json")  # only later clips


def test_the_newest_clip_of_an_id_is_held_back_while_it_may_still_be_recorded(tmp_path):
    _clips(tmp_path / "c", ["id_00_00000000.wav", "id_00_00000001.wav"])
    clips = _clips(tmp_path / "c", ["id_00_00000002.wav"], seconds=0.4)  # the recorder is still writing it
    kept, held = monitor.held_back(clips, usual=1.0)
    assert [c.path.name for c in kept] == ["id_00_00000000.wav", "id_00_00000001.wav"]
    assert held == ["id_00_00000002.wav: the newest clip of ID 00 is 0.4 s long, the training clips 1 s: left for "
                    "the next call, as it may still be being recorded (a recording's short last piece, as asd cut "
                    "keeps it, is scored once a later clip comes)"]


def test_a_state_file_is_read_only_when_asd_score_wrote_it_for_the_same_alarm_after(tmp_path):
    path = tmp_path / "state.json"
    assert monitor.load_state(path, 3) == {"alarm_after": 3, "detectors": {}}  # none yet
    assert monitor.load_state(None, 3) is None
    path.write_text(json.dumps({"alarm_after": 3, "detectors": {"pca": {"00": {"run": 2, "last_clip": "a.wav"}}}}))
    assert monitor.load_state(path, 3)["detectors"]["pca"]["00"]["run"] == 2
    with pytest.raises(DataError, match="counts runs for --alarm-after 3, not 2"):
        monitor.load_state(path, 2)
    path.write_text(json.dumps({"alarm_after": 3, "detectors": {"pca": {"00": {"run": -1, "last_clip": "a.wav"}}}}))
    with pytest.raises(DataError, match="not an alarm state written by asd score"):
        monitor.load_state(path, 3)
