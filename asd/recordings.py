"""A plant's own recordings in the release's layout: ``asd arrange`` links (or copies) a recorder's
files into ``<root>/<machine>/{train,test}`` under release names, and ``asd cut`` cuts long
recordings into clips of about the training clips' length, as recordings arrive."""
from __future__ import annotations

import filecmp
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asd.config import CLIP_SECONDS
from asd.data import LABELS, SPLITS, DataError, readable, reading, release_name, wav_files
from asd.utils import atomic_write_bytes, written_whole


@dataclass
class Arranged:
    """What :func:`arrange` did."""

    made: list[tuple[Path, Path]]  # (new path, original) of each clip added
    skipped: int  # sources arranged before (or given twice)
    relinked: list[tuple[Path, Path]]  # (link, original's new place) of links to moved recordings
    missing: list[Path]  # links whose original is still missing


def checked_id(machine_id: str) -> str:
    """``machine_id``, checked to be two digits as in the release's names; else a :class:`DataError`."""
    if not re.fullmatch(r"[0-9]{2}", machine_id):
        raise DataError(f"a machine ID is two digits (00, 01, ...), got {machine_id!r}")
    return machine_id


def checked_machine(machine: str) -> str:
    """``machine``, checked to be a folder name (letters, digits, ``_ - .``); else a :class:`DataError`."""
    if not re.fullmatch(r"[\w.-]+", machine) or set(machine) == {"."}:
        raise DataError(f"a machine type is a folder name (letters, digits, _ - .), got {machine!r}")
    return machine


def arrange(sources: list[Path], root: Path, machine: str, machine_id: str, split: str = "train",
            label: str = "normal", copy: bool = False) -> Arranged:
    """Put a recorder's own WAV files into the release layout, so that ``asd run`` reads them:
    ``root/machine/split/<label>_id_<NN>_<NNNNNNNN>.wav`` (``id_<NN>_...`` for ``label="unlabelled"``),
    as symbolic links to the originals (or copies), numbered on after the clips already there.

    ``root/machine/<split>_names.csv`` lists each new name and its original (``name,original``),
    and a source listed there already (or linked there; paths compared after following links) is
    skipped, so that new recordings can be added by running it again; a source arranged into the
    other split is refused. A link of this ID and label whose original was moved is pointed at the
    source of the same file name, when exactly one has it: given the recordings' new place, it
    repairs the links. Training clips are normal.
    """
    _checked_arrangement(machine, machine_id, split, label)
    folder, names = Path(root) / machine / split, Path(root) / machine / f"{split}_names.csv"
    files = wav_files(sources)
    other = next(s for s in SPLITS if s != split)
    other_names = Path(root) / machine / f"{other}_names.csv"
    elsewhere = {_where(o) for o in _arranged(other_names).values()}
    both = [p for p in files if _where(p) in elsewhere]
    if both:
        raise DataError(f"{both[0]}: already arranged into {other} ({other_names}); a recording trained on cannot "
                        "also test the detector")
    inside = [p for p in files if _where(p.parent) == _where(folder)]
    if inside:
        raise DataError(f"{inside[0]}: already in the folder it would be arranged into; arrange from the "
                        "recorder's own folder")
    entries = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav") if folder.is_dir() else []
    listed = _arranged(names)
    _list_unlisted_links(names, entries, listed)  # a run interrupted between a link and its line
    prefix = "" if label == "unlabelled" else f"{label}_"
    ours = re.compile(rf"{prefix}id_{machine_id}_\d+\.wav", re.IGNORECASE)  # this ID's and label's clips
    todo = _not_arranged(files, listed, ours, names)
    broken = [p for p in entries if p.is_symlink() and not p.exists() and ours.fullmatch(p.name)]
    relinked = _relink(broken, todo, listed, names, copy)
    moved = _moved_copies([p for p in entries if not p.is_symlink() and ours.fullmatch(p.name)], todo, listed, names)
    todo = [p for p in todo if p not in {source for _, source in relinked} | moved]
    taken = [named[1] for p in entries if (named := release_name(p.name)) and named[0] == machine_id]
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i, source in enumerate(todo, max(taken, default=-1) + 1):
        target = folder / f"{prefix}id_{machine_id}_{i:08d}.wav"
        _place(source, target, copy)
        with names.open("a") as out:  # line by line: an interrupted run leaves a true list
            out.write(f"{target.name},{source.absolute()}\n")
        made.append((target, source))
    missing = [p for p in entries if p.is_symlink() and not p.exists()]
    return Arranged(made, len(files) - len(todo) - len(relinked), relinked, missing)


def _checked_arrangement(machine: str, machine_id: str, split: str, label: str) -> None:
    """:func:`arrange`'s arguments checked: a split and label of the layout, normal training clips,
    a two-digit ID and a machine type that is a folder name."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if label not in (*LABELS, "unlabelled"):
        raise DataError(f"label must be normal, anomaly or unlabelled, got {label!r}")
    if split == "train" and label != "normal":
        raise DataError("training clips are normal recordings: use the test split for other labels")
    checked_id(machine_id)
    checked_machine(machine)


def _not_arranged(files: list[Path], listed: dict[str, str], ours: re.Pattern, names: Path) -> list[Path]:
    """The ``files`` not yet arranged (in the list ``listed``, read from ``names``), each recording
    once however its path is spelled, checked to be readable audio; one arranged already under
    a name that ``ours`` (this ID and label) does not match is an error."""
    done = {_where(o): name for name, o in listed.items()}
    todo = []
    for path in files:
        if (name := done.get(_where(path))) is None:
            done[_where(path)] = ""
            todo.append(path)
        elif name and not ours.fullmatch(name):
            raise DataError(f"{path}: already arranged as {name} ({names}): a recording is one machine's, "
                            "with one label")
    for path in todo:  # a text file named .wav stops here, not at the next asd run
        if "\n" in str(path.absolute()) or "\r" in str(path.absolute()):
            raise DataError(f"{str(path)!r}: a line break in its path, which the names list ({names}) cannot "
                            "hold: rename it")
        readable(path)
    return todo


# samples read as stored, so that a piece holds the recording's own values (24-bit read as int32);
# any other encoding (MP3, Vorbis, ADPCM, 8-bit, ...) is decoded to 32-bit float and written so
_STORED = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32", "FLOAT": "float32"}


def _stored(info) -> tuple[str, str]:
    """The WAV subtype a piece of a recording with ``info`` is written in, and the dtype its samples
    are read as."""
    return (info.subtype, _STORED[info.subtype]) if info.subtype in _STORED else ("FLOAT", "float32")


@dataclass
class Cut:
    """What :func:`cut` did."""

    made: list[Path]  # the pieces written, in order
    kept: int  # pieces there already (an earlier cut of the same recording)
    short: list[Path]  # recordings whose final piece was too short to keep


def cut(sources: list[Path], out: Path, seconds: int = CLIP_SECONDS) -> Cut:
    """Cut long recordings into clips of ``seconds``: ``out/<stem>_<start>s.wav`` (``press_000130s.wav``
    holds seconds 130-140 of ``press.wav``), each with the recording's sample rate, channels and
    sample format, so that a clip's score, the mean over all of it, is not the mean of minutes.
    A final piece shorter than half a clip is dropped: it would score as a shorter clip. A
    piece already in ``out`` is kept, so new recordings can be added by cutting again; a final
    piece that has grown with its recording since (a recorder still writing it) is written again
    whole, and one that holds other audio (a recorder that named a new recording as an old one,
    another ``seconds``) is a :class:`DataError`, found before anything is written."""
    if seconds < 1:
        raise DataError(f"seconds must be at least 1, got {seconds}")
    files = wav_files(sources)
    inside = [p for p in files if _where(p.parent) == _where(out)]
    if inside:
        raise DataError(f"{inside[0]}: already in {out}, the folder the pieces go to; cut into another folder")
    infos = {}
    for path in files:
        with reading(path), sf.SoundFile(path) as audio:
            infos[path], seekable = sf.info(path), audio.seekable()
        if not seekable:
            raise DataError(f"{path}: its encoding ({infos[path].subtype}) cannot be read from the middle, "
                            "so it cannot be cut: convert it to PCM WAV first")
        if infos[path].frames == 0 and (size := path.stat().st_size) > 4096:
            raise DataError(f"{path}: its header says 0 samples, but the file holds {size:,} bytes: a recording "
                            "left unfinished (power lost)? Repair its header first (sox, ffmpeg)")
    stems = Counter(p.stem for p in files)
    twin = next((stem for stem, n in stems.items() if n > 1), None)
    if twin is not None:
        where = ", ".join(str(p) for p in files if p.stem == twin)
        raise DataError(f"two recordings named {twin} ({where}): their pieces would have the same names; "
                        "cut one folder at a time")
    plan, short = _cut_plan(infos, seconds)
    if not any(plan.values()):
        raise DataError(f"{files[0]}{' and the others' if len(files) > 1 else ''}: shorter than half a clip of "
                        f"{seconds} s: nothing to cut")
    pieces = {(path, start): Path(out) / f"{path.stem}_{start // info.samplerate:06d}s.wav"
              for path, info in infos.items() for start in plan[path]}
    kept = _kept_pieces(pieces, infos, plan)
    Path(out).mkdir(parents=True, exist_ok=True)
    made = []
    for (path, start), target in pieces.items():
        if (path, start) in kept:
            continue
        info = infos[path]
        y = _piece(path, info, start, plan[path].step)
        with written_whole(target) as part:
            sf.write(part, y, info.samplerate, subtype=_stored(info)[0], format="WAV")
        made.append(target)
    return Cut(made, len(kept), short)


def _cut_plan(infos: dict, seconds: int) -> tuple[dict[Path, range], list[Path]]:
    """Each recording's piece starts (in frames, ``seconds`` apart), and the recordings whose
    final piece, shorter than half a clip, is dropped."""
    plan, short = {}, []
    for path, info in infos.items():
        step = seconds * info.samplerate
        plan[path] = range(0, info.frames, step)
        if not plan[path] or info.frames - plan[path][-1] < step / 2:
            short.append(path)
            plan[path] = plan[path][:-1]
    return plan, short


def _kept_pieces(pieces: dict[tuple[Path, int], Path], infos: dict, plan: dict[Path, range]) -> set:
    """The planned pieces (``(recording, start)``) already in the output folder that stay: all but
    a recording's last piece where that has grown with its recording (:func:`_grown`, which
    raises on a piece that holds other audio)."""
    there = [key for key, target in pieces.items() if target.exists()]  # in the plan's order
    last = {path: max(key[1] for key in there if key[0] == path) for path, _ in there}  # each recording's last piece
    return {key for key in there
            if not _grown(pieces[key], key[0], infos[key[0]], key[1], plan[key[0]].step, key[1] == last[key[0]])}


def _piece(path: Path, info, start: int, step: int) -> np.ndarray:
    """The samples of ``path`` from ``start`` (at most ``step`` frames), in its own sample format."""
    with reading(path):
        return sf.read(path, start=start, stop=start + step, dtype=_stored(info)[1],
                       always_2d=True)[0]


def _grown(target: Path, path: Path, info, start: int, step: int, last: bool) -> bool:
    """Whether a piece :func:`cut` finds already made is the start of the piece of ``path`` from
    ``start``, shorter than it now is (the recording grew since: True; only its ``last`` piece can),
    or the whole of it (False): same sample rate and channels, and its first second the same
    samples; else a :class:`DataError`."""
    with reading(target):
        there = sf.info(target)
    length = min(step, info.frames - start)
    same = ((there.samplerate, there.channels) == (info.samplerate, info.channels)
            and (there.frames == length or last and there.frames < length))
    if same:
        head = min(there.frames, info.samplerate)
        with reading(target):
            first = sf.read(target, frames=head, dtype=_stored(info)[1], always_2d=True)[0]
        same = np.array_equal(first, _piece(path, info, start, head))
    if not same:
        raise DataError(f"{target}: already there, but not the piece of {path} from {start / info.samplerate:g} s "
                        "(another recording of the same name, or cut with another --seconds): cut into another folder")
    return there.frames < length


def _where(path: Path | str) -> str:
    """The file ``path`` names, links and ``..`` followed: one recording, one key."""
    return str(Path(path).resolve())


def _arranged(names: Path) -> dict[str, str]:
    """Clip name -> original, from an ``asd arrange`` names file (``name,original`` lines), if there is one."""
    if not names.exists():
        return {}
    done = {}
    for number, line in enumerate(names.read_text().splitlines(), 1):
        if line:
            if "," not in line:
                raise DataError(f"{names}:{number}: expected 'name,original', got {line!r}")
            name, original = line.split(",", 1)
            done[name] = original
    return done


def _list_unlisted_links(names: Path, entries: list[Path], listed: dict[str, str]) -> None:
    """Add to ``names`` (and ``listed``) the links in the folder that it does not list."""
    unlisted = {p.name: str(p.readlink()) for p in entries if p.is_symlink() and p.name not in listed}
    if unlisted:
        with names.open("a") as out:
            out.writelines(f"{name},{original}\n" for name, original in unlisted.items())
        listed.update(unlisted)


def _rewrite(names: Path, listed: dict[str, str]) -> None:
    """``names`` rewritten whole from ``listed`` (clip name -> original)."""
    atomic_write_bytes(names, "".join(f"{n},{o}\n" for n, o in listed.items()).encode())


def _place(source: Path, target: Path, copy: bool) -> None:
    """``target`` as a link to ``source``, or a copy of it (whole: written aside, then renamed)."""
    if copy:
        with written_whole(target) as part:
            shutil.copy2(source, part)
    else:
        target.symlink_to(source.absolute())


def _relink(broken: list[Path], sources: list[Path], listed: dict[str, str], names: Path,
            copy: bool) -> list[tuple[Path, Path]]:
    """Point each link in ``broken`` at the one source with its original's file name (when exactly
    one link and one source share that name; a copy of it with ``copy``), and rewrite ``names`` to match."""
    by_name = Counter(p.name for p in sources)
    original = {link: Path(listed.get(link.name, link.readlink())).name for link in broken}  # its file name
    wanted = Counter(original.values())
    relinked = []
    for link in broken:
        base = original[link]
        if by_name[base] == 1 and wanted[base] == 1:
            source = next(p for p in sources if p.name == base)
            link.unlink()
            _place(source, link, copy)
            listed[link.name] = str(source.absolute())
            relinked.append((link, source))
    if relinked:
        _rewrite(names, listed)
    return relinked


def _moved_copies(copies: list[Path], sources: list[Path], listed: dict[str, str], names: Path) -> set[Path]:
    """The sources that are ``copies`` already made (``--copy``) of recordings since moved: same
    file name as a copy's listed original, which is gone, and the same bytes as the copy. ``names``
    is rewritten to list their new place; they are not copied again."""
    found = {}
    for clip in copies:
        original = listed.get(clip.name)
        if original is None or Path(original).exists():
            continue
        same = [p for p in sources if p.name == Path(original).name and filecmp.cmp(p, clip, shallow=False)]
        if len(same) == 1:
            found[clip.name] = same[0]
    if found:
        listed.update({name: str(source.absolute()) for name, source in found.items()})
        _rewrite(names, listed)
    return set(found.values())
