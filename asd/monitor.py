"""Scoring clips as they arrive (``asd score --alarm-state``, ``--new-only``): the runs of flagged clips
each detector carries from one call to the next, kept in a JSON state file, and which clips are new."""
from __future__ import annotations

import json
import warnings
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from asd.data import DataError, time_key, time_order, unfinished
from asd.metrics import open_runs
from asd.utils import and_more, exclusive


def state_lock(path: Path | None) -> AbstractContextManager:
    """A lock held while a call reads, advances and writes the alarm state at ``path`` (none without one)."""
    if path is None:
        return nullcontext()
    lock = path.with_name(f".{path.name}.lock")
    if lock.exists() and not lock.is_file():
        raise DataError(f"{lock}: the lock asd score keeps beside --alarm-state {path} is not a file: remove it")
    return exclusive(lock, f"another asd score is using {path}: waiting for it")


def load_state(path: Path | None, after: int) -> dict | None:
    """``asd score --alarm-state``: per detector and ID, the run of flagged clips the last call
    ended on and its last clip (nothing yet where ``path`` does not exist), checked to be counted
    for the same ``--alarm-after``."""
    if path is None:
        return None
    if not path.exists():
        return {"alarm_after": after, "detectors": {}}
    try:
        state = json.loads(path.read_text())
        valid = (isinstance(state.get("alarm_after"), int) and isinstance(state.get("detectors"), dict)
                 and all(type(e.get("run")) is int and e["run"] >= 0 and isinstance(e.get("last_clip"), str)
                         for per_id in state["detectors"].values() for e in per_id.values()))
    except (ValueError, AttributeError):  # not JSON, or not the nesting asd score writes
        valid = False
    if not valid:
        raise DataError(f"--alarm-state {path}: not an alarm state written by asd score (remove it to start anew)")
    if state["alarm_after"] != after:
        raise DataError(f"--alarm-state {path} counts runs for --alarm-after {state['alarm_after']}, not {after}: "
                        "give that, or a new state file")
    return state


def _last_counted(state: dict, names: list[str]) -> dict[str, tuple[str, str]]:
    """Per ID, the latest clip that one of the detectors ``names`` counted in ``state`` (in
    recording order, :func:`asd.data.time_key`), and that detector."""
    last: dict[str, tuple[str, str]] = {}
    for name in names:
        for mid, entry in state["detectors"].get(name, {}).items():
            if mid not in last or time_key(entry["last_clip"]) > time_key(last[mid][0]):
                last[mid] = entry["last_clip"], name
    return last


def new_clips(clips, state: dict, names: list[str]) -> tuple[list, list]:
    """``asd score --new-only``: the clips after the last one counted in ``state`` for their ID,
    and the others (counted already)."""
    last = {mid: time_key(clip) for mid, (clip, _) in _last_counted(state, names).items()}
    new, counted = [], []
    for c in clips:
        (new if c.machine_id not in last or time_key(c.path.name) > last[c.machine_id] else counted).append(c)
    return new, counted


def held_back(clips, usual: float | None) -> tuple[list, list[str]]:
    """``asd score --new-only``: ``clips`` without the newest of each ID where it may still be being
    recorded (:func:`asd.data.unfinished`; ``usual``: the training clips' length), and a line for
    each clip held back. Not counted, it comes first in the next call."""
    newest = {}
    for c in clips:
        if c.machine_id not in newest or time_key(c.path.name) > time_key(newest[c.machine_id].path.name):
            newest[c.machine_id] = c
    short = " (a recording's short last piece, as asd cut keeps it, is scored once a later clip comes)"
    held = {c.path: f"{c.path.name}: the newest clip of ID {c.machine_id} {why}: left for the next call, as it may "
                    f"still be being recorded{short if why.startswith('is ') else ''}"
            for c in newest.values() if (why := unfinished(c.path, usual))}
    return [c for c in clips if c.path not in held], list(held.values())


def warn_written_after(path: Path, left_out: list) -> None:
    """Warn about clips that ``--new-only`` leaves out as counted already but that were written
    after the state file: a recorder that started its count anew (``rec1.wav`` again) would
    otherwise go unheard, call after call."""
    if not path.exists():
        return
    since = path.stat().st_mtime
    late = [c.path for c in left_out if c.path.stat().st_mtime > since]
    if late:
        warnings.warn(f"{and_more(late)}: written after {path}, yet not after the clips counted there, so left out "
                      "by --new-only: clips copied again, or a recorder that started its count anew (then start a "
                      "new state file)?")


def check_after_counted(state: dict | None, clips, names: list[str], path: Path | None) -> None:
    """Every clip after the last one counted in ``state`` for its ID, checked before any work:
    counted twice, a clip would lengthen a run of flagged clips."""
    for mid, (clip, name) in _last_counted(state or {"detectors": {}}, names).items():
        early = min((c.path.name for c in clips if c.machine_id == mid), key=time_key, default=None)
        if early is not None and time_key(early) <= time_key(clip):
            raise DataError(f"{early}: {name} counted ID {mid}'s clips up to {clip} in --alarm-state {path}; "
                            "score only later clips (--new-only picks them), or start a new state file")


def carried(state: dict | None, name: str) -> dict[str, int]:
    """The runs of flagged clips per ID that detector ``name`` carries over from the state."""
    return {mid: entry["run"] for mid, entry in (state or {"detectors": {}})["detectors"].get(name, {}).items()}


def advance(state: dict, results, quantile: float, calibration: str) -> None:
    """Each model's runs of flagged clips and last clip per ID, once ``results`` are counted."""
    order = time_order(results.test.clips)
    last = {results.test.clips[i].machine_id: results.test.clips[i].path.name for i in order}  # each ID's last
    for name in results.models:
        decided = results.decisions(name, quantile, calibration)[order]
        runs = open_runs(results.test.clip_ids[order], decided, carried(state, name))
        state["detectors"].setdefault(name, {}).update(
            {mid: {"run": runs[mid], "last_clip": clip} for mid, clip in last.items()})
