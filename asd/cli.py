"""Command line: ``asd synth``, ``asd run``, ``asd score``, ``asd cut``, ``asd arrange``, ``asd download``,
``asd bench``.

Bad input (a :class:`asd.data.DataError`, a failed download, a bad argument) ends with a one-line
``asd: error: ...`` message and exit status 2; Ctrl-C with ``asd: interrupted`` and 130. Anything
else is a bug: it keeps its traceback and exits with 3, apart from the 1 of ``--fail-on-alarm``.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from asd.config import (CALIBRATIONS, CLIP_SECONDS, DECISION_QUANTILE, DETECTORS, MIN_GAMMA_SCORES, NETWORKS,
                        PRECISIONS, PROFILES, QUICK_SYNTH, Config, get_config, home)
from asd.download import MACHINES
from asd.utils import and_more, not_a_folder


PROFILE_HELP = ("quick: few epochs, minutes on a laptop; full: the report's epochs and batch sizes; every clip "
                "in --data is used either way (default: $ASD_PROFILE, else quick)")

BENCH_PROFILE_HELP = ("without --data, the synthetic set to time on (quick: the reduced set; full: the real "
                      "data's clip counts); both time the report's batch sizes, for the epochs --epochs gives "
                      "(default: $ASD_PROFILE, else quick)")

SYNTH_PROFILE_HELP = (f"quick: a reduced set (at most {max(QUICK_SYNTH.dev.train)} training clips per ID), minutes to "
                      "train on a laptop; "
                      "full: the real release's clip counts (default: $ASD_PROFILE, else quick)")
DEVICE_HELP = "auto (CUDA if available, else the CPU), cpu or cuda (default: $ASD_DEVICE, else auto)"


# Shown at the end of each command's --help (tests parse every line, so none goes stale).
EXAMPLES = {
    "synth": ["asd synth ~/asd-data                   # quick profile: dev_data/ and eval_data/",
              "asd synth ~/asd-data --profile full    # the real release's clip counts",
              "asd synth ~/asd-loud --seed 1 --hall-db 6   # other clips, in a hall 6 dB louder"],
    "run": ["asd run --data ~/asd-data/dev_data     # the report's four networks: AUC/pAUC per ID",
            "asd run --data ~/dcase --ids all --models pca idnn idclf sequential",
            "asd run --data ~/dcase/eval_data --scores-dir scores    # the challenge's CSV files",
            "asd run --data ~/plant --machine press --models pca sequential --save-models models",
            "asd run --data ~/asd-data/dev_data --models pca --max-train 10   # 10 training clips per ID"],
    "score": ["asd score models/sequential.pt --clips ~/plant/incoming --scores-dir today",
              "asd score models/pca.pt models/sequential.pt --clips new --calibration-clips quiet-week",
              "asd score models/sequential.pt --clips ~/plant/incoming --alarm-after 3   # 3 flagged in a row",
              "asd score models/sequential.pt --clips today --alarm-after 3 --alarm-state runs.json",
              "asd score models/pca.pt --clips ~/rec/press --id 00 --alarm-after 3 --alarm-state runs.json "
              "--new-only --fail-on-alarm   # an hourly job"],
    "cut": ["asd cut ~/rec/press-long --out ~/rec/press-clips   # 10-s clips, as the release's",
            "asd cut ~/rec/today --out ~/rec/today-clips --seconds 5   # as long as 5-s training clips"],
    "arrange": ["asd arrange ~/rec/press-ok --out ~/plant --machine press --id 00",
                "asd arrange ~/rec/press-new --out ~/plant --machine press --id 00 --split test --label unlabelled"],
    "download": ["asd download ~/dcase                    # dev_data/slider: IDs 00, 02, 04, 06",
                 "asd download ~/dcase --set additional   # eval_data/slider/train",
                 "asd download ~/dcase --set eval         # eval_data/slider/test and its labels"],
    "bench": ["asd bench --epochs 2 --out bench.json",
              "asd bench --device cuda --precision bf16 --models sequential"],
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help lines wrapped between words only: an option (``--calibration-clips``) or a path pattern
    is never split at a hyphen or inside itself, so it can be read and copied whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)


def _command(sub: argparse._SubParsersAction, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its :data:`EXAMPLES`."""
    return sub.add_parser(name, help=summary, allow_abbrev=False,
                          epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name]),
                          formatter_class=_Formatter)


class UsageError(ValueError):
    """A command-line argument that cannot be used (reported in one line, like argparse's own errors)."""


def _checked_device(name: str | None) -> str:
    from asd.utils import resolve_device

    try:
        return str(resolve_device(name))
    except (RuntimeError, ValueError) as err:
        raise UsageError(str(err)) from None


def _versions() -> str:
    """This package's version and those of the libraries that decide its numbers, for a bug report."""
    from asd.utils import versions

    found = versions()
    libraries = ", ".join(f"{name} {found[name]}" for name in found if name not in ("asd", "python"))
    return f"asd {found['asd']} (python {found['python']}, {libraries})"


class _Version(argparse.Action):
    """``--version``: :func:`_versions` on one line (argparse's own version action wraps it)."""

    def __init__(self, option_strings: list[str], dest: str, **_) -> None:
        super().__init__(option_strings, dest, nargs=0,
                         help="show the versions of asd and of the libraries behind its numbers, and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_) -> None:
        print(_versions())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asd", allow_abbrev=False,
                                description="Unsupervised anomalous machine-sound detection.",
                                epilog="start with: asd synth ~/asd-data && asd run --data ~/asd-data/dev_data\n"
                                       "each command's --help ends with examples",
                                formatter_class=_Formatter)
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_synth_parser, _run_parser, _score_parser, _cut_parser, _arrange_parser, _download_parser,
                _bench_parser):
        add(sub)
    return p


def _synth_parser(sub: argparse._SubParsersAction) -> None:
    """``asd synth OUT``: write the synthetic stand-in."""
    s = _command(sub, "synth", "write the embedded synthetic slider dataset")
    s.add_argument("out", type=Path, help="folder to write dev_data/ and eval_data/ into")
    s.add_argument("--profile", choices=PROFILES, default=None, help=SYNTH_PROFILE_HELP)
    s.add_argument("--seed", type=_at_least(0, SEED_MAX), default=0, help="the stand-in's seed (default 0, the book's)")
    s.add_argument("--hall-db", type=float, default=0.0, metavar="DB",
                   help="record the same clips in a hall DB louder (negative: quieter; at most 20): the "
                        "background rises, the machines and faults stay, to test detectors trained in "
                        "the usual hall (default 0)")


def _run_parser(sub: argparse._SubParsersAction) -> None:
    """``asd run --data DATA``: train, evaluate and optionally save detectors."""
    r = _command(sub, "run", "train and evaluate detectors, print the AUC/pAUC table")
    r.add_argument("--data", type=Path, required=True,
                   help="folder holding <machine>/train and <machine>/test (dev_data/ of a release root is found)")
    r.add_argument("--ground-truth", type=Path, default=None, metavar="LIST",
                   help="labels of unlabelled eval test clips (default: eval_data_list.csv in or beside --data)")
    r.add_argument("--scores-dir", type=Path, default=None,
                   help="also write DIR/<model>/anomaly_score_<machine>_id_<NN>.csv (the challenge's format) and "
                        "decision_result_<machine>_id_<NN>.csv (1 anomalous); with it, test clips without labels "
                        "are scored, not evaluated")
    _decision_arguments(r)
    r.add_argument("--machine", default="slider", type=_machine, help="the machine type's folder name (default slider)")
    r.add_argument("--ids", nargs="+", action="extend", default=None,
                   help="machine IDs, or 'all' (default: the report's IDs, e.g. slider 00 02 04)")
    r.add_argument("--models", nargs="+", action="extend", default=None, metavar="NAME",
                   help=f"detectors: {', '.join(DETECTORS)} (default: {' '.join(NETWORKS)})")
    r.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default, as the report) or bf16 autocast (weights stay fp32)")
    r.add_argument("--concurrent", action="store_true",
                   help="train the networks at the same time, one CUDA stream each (GPU only; the "
                        "longest network bounds the wall time)")
    r.add_argument("--epochs", type=_at_least(1), default=None, help="override every model's epochs")
    r.add_argument("--profile", choices=PROFILES, default=None, help=PROFILE_HELP)
    r.add_argument("--device", default=None, help=DEVICE_HELP)
    r.add_argument("--seed", type=_at_least(0, SEED_MAX), default=0,
                   help="seeds the weights, the validation split and the batch order (default 0)")
    r.add_argument("--per-id", action="store_true", help="train one model per machine ID")
    r.add_argument("--max-train", type=_at_least(1), default=None, metavar="N",
                   help="train on the first N training clips of each ID by number (asd arrange numbers a "
                        "recorder's files in name order: the first recorded) and test on all the test clips: "
                        "how many normal clips a detector needs")
    r.add_argument("--out", type=Path, default=None, metavar="FILE.json", help="write the results as JSON")
    r.add_argument("--figures", type=Path, default=None, metavar="DIR",
                   help="draw the training curves (DIR/training.png), each model's test scores against its "
                        "thresholds (DIR/<model>_<machine>.png), the 2 highest-scoring flagged clips' log-mel "
                        "and vector scores over time (DIR/<model>_<machine>_flagged.png: when and in which "
                        "bands the model was surprised) and, for labelled test clips, ROC curves, "
                        "score histograms and AUC bars (DIR/roc.png, scores.png, auc.png); on the synthetic "
                        "stand-in also the AUC per fault type and severity (DIR/faults.png)")
    r.add_argument("--save-models", type=Path, default=None, metavar="DIR",
                   help="also save each trained detector as DIR/<model>.pt, to score new clips with asd score")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--no-cache", action="store_true", help="retrain even if an identical run is cached")


def _score_parser(sub: argparse._SubParsersAction) -> None:
    """``asd score MODEL... --clips PATH...``: score new clips with saved detectors."""
    c = _command(sub, "score", "score new clips with detectors saved by asd run --save-models, and flag "
                               "anomalies (no training)")
    c.add_argument("models", nargs="*", type=Path, metavar="MODEL",
                   help="detector files (DIR/<model>.pt), or the folder DIR holding them")
    c.add_argument("--clips", nargs="+", action="extend", type=Path, required=True, metavar="PATH",
                   help="WAV files or folders of them, named id_NN_NNNNNNNN.wav (NN: the machine ID); labelled "
                        "names (normal_id_NN_..., anomaly_id_NN_...) add AUC/pAUC")
    c.add_argument("--ground-truth", type=Path, default=None, metavar="LIST",
                   help="the labels of unlabelled clips, from a list in the DCASE evaluator's format (as "
                        "eval_data_list.csv): AUC/pAUC, as for labelled names")
    c.add_argument("--scores-dir", type=Path, default=None, metavar="DIR",
                   help="write the score and decision files of each ID, "
                        "DIR/<model>/anomaly_score_<machine>_id_<NN>.csv and decision_result_<machine>_id_<NN>.csv, "
                        "as asd run")
    c.add_argument("--figures", type=Path, default=None, metavar="DIR",
                   help="draw each model's scores, clip by clip in order, against the thresholds "
                        "(DIR/<model>_<machine>.png), and the 2 highest-scoring flagged clips' log-mel and "
                        "vector scores over time (DIR/<model>_<machine>_flagged.png)")
    c.add_argument("--out", type=Path, default=None, metavar="FILE.json",
                   help="write the clips, and per detector its thresholds and each clip's score and decision, "
                        "as JSON")
    _decision_arguments(c, stored=True)
    c.add_argument("--alarm-state", type=Path, default=None, metavar="FILE",
                   help="with --alarm-after: carry runs of flagged clips over from the last call that wrote FILE "
                        "(none if it does not exist yet) and write where this call's runs end, so that a run "
                        "spanning two calls raises its alarm; the clips must come after those counted there")
    c.add_argument("--new-only", action="store_true",
                   help="with --alarm-state: score only the clips after the last one counted there for their ID, "
                        "so that a job run every hour can score a recorder's growing folder (the newest clip "
                        "of an ID, if not readable or over a twentieth shorter than the training clips, waits for "
                        "the next call: "
                        "the recorder may be writing it)")
    c.add_argument("--fail-on-alarm", action="store_true",
                   help="with --alarm-after: exit with status 1 when this call raises an alarm, so that the job "
                        "that runs it can tell someone (bad input exits with 2, a bug in asd with 3)")
    c.add_argument("--id", type=_machine_id, default=None, metavar="NN",
                   help="the machine ID of every --clips and --calibration-clips file whose name does not say it "
                        "(a recorder's own file names)")
    c.add_argument("--device", default=None, help=DEVICE_HELP)
    c.add_argument("--quiet", action="store_true", help="no progress bars")


def _cut_parser(sub: argparse._SubParsersAction) -> None:
    """``asd cut PATH... --out DIR``: long recordings into clips of the training clips' length."""
    c = _command(sub, "cut", "cut long recordings into clips as long as the training clips (a clip's score is "
                             "its mean: minutes average a short fault away)")
    c.add_argument("sources", nargs="+", type=Path, metavar="PATH", help="WAV files or folders of them")
    c.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the clips, DIR/<recording>_<start>s.wav (the start in seconds)")
    c.add_argument("--seconds", type=_at_least(1), default=CLIP_SECONDS,
                   help=f"each clip's length (default {CLIP_SECONDS}, the release's clips); a final piece under "
                        "half of it is dropped")


def _arrange_parser(sub: argparse._SubParsersAction) -> None:
    """``asd arrange PATH... --out DATA``: put a recorder's files into the release layout."""
    a = _command(sub, "arrange", "put a recorder's own WAV files into the release layout (links with "
                                 "release names), so that asd run reads them")
    a.add_argument("sources", nargs="+", type=Path, metavar="PATH", help="WAV files or folders of them")
    a.add_argument("--out", type=Path, required=True, metavar="DATA", help="the data folder (asd run --data DATA)")
    a.add_argument("--machine", required=True, type=_machine, help="the machine type's folder name, e.g. press")
    a.add_argument("--id", required=True, type=_machine_id, metavar="NN", help="the machine's ID, two digits")
    a.add_argument("--split", choices=("train", "test"), default="train",
                   help="train: normal recordings to learn from (default); test: recordings to check")
    a.add_argument("--label", choices=("normal", "anomaly", "unlabelled"), default=None,
                   help="test clips: their label, if known (normal recordings set thresholds; unlabelled: "
                        "recordings to check); needed with --split test (training clips are normal)")
    a.add_argument("--copy", action="store_true", help="copy the files instead of linking to them")


def _download_parser(sub: argparse._SubParsersAction) -> None:
    """``asd download DEST``: fetch the official DCASE 2020 archives."""
    d = _command(sub, "download", "fetch and unpack the official DCASE 2020 Task 2 archives")
    d.add_argument("dest", type=Path, help="folder to unpack into (dev_data/ or eval_data/ is made there)")
    d.add_argument("--set", dest="which", default="dev", choices=("dev", "additional", "eval"),
                   help="dev: development set (default); additional: the eval IDs' training clips; "
                        "eval: their test clips and the ground-truth list")
    d.add_argument("--machine", default="slider", choices=MACHINES, help="machine type (default slider)")


def _bench_parser(sub: argparse._SubParsersAction) -> None:
    """``asd bench``: time the training loops and feature extraction."""
    b = _command(sub, "bench", "time the plain DataLoader loop against asd.train, and feature extraction")
    b.add_argument("--data", type=Path, default=None, help="dataset folder (default: the synthetic data)")
    b.add_argument("--machine", default="slider", type=_machine,
                   help="the machine type's folder name (default slider)")
    b.add_argument("--models", nargs="+", action="extend", default=None, metavar="NAME",
                   help=f"networks to time (default: {' '.join(NETWORKS)})")
    b.add_argument("--epochs", type=_at_least(1), default=2, help="epochs each loop runs per network (default 2)")
    b.add_argument("--profile", choices=PROFILES, default=None, help=BENCH_PROFILE_HELP)
    b.add_argument("--device", default=None, help=DEVICE_HELP)
    b.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="of asd.train's loop (default fp32; the plain loop stays fp32, so under bf16 the "
                        "ratio includes what bfloat16 saves)")
    b.add_argument("--max-clips", type=_at_least(1), default=None, help="use at most this many training clips")
    b.add_argument("--out", type=Path, default=None, metavar="FILE.json", help="write the timings as JSON")


def _decision_arguments(p: argparse.ArgumentParser, stored: bool = False) -> None:
    """The options that decide which clips are flagged; ``stored``: asd score's, whose detectors may
    carry calibration scores saved with them."""
    p.add_argument("--decision-quantile", type=float, default=None, metavar="Q",
                   help="a clip is anomalous above this quantile of a gamma distribution fitted to scores of "
                        f"its ID's normal clips (default {DECISION_QUANTILE}, as the DCASE 2021-2025 baselines)")
    p.add_argument("--calibration", choices=CALIBRATIONS, default=None,
                   help="fit that gamma to the scores of all training clips (default, as the baselines), of the "
                        "clips each network held out from training (its validation clips, never fitted) or of "
                        "the --calibration-clips (default when they are given"
                        + ("; 'calibration' without clips: those scored when the detector was saved, the default "
                           "where every detector was saved with them)" if stored else ")"))
    p.add_argument("--calibration-clips", nargs="+", action="extend", type=Path, default=None, metavar="PATH",
                   help="normal WAV files or folders of them, recorded apart from the training clips and named "
                        "as test clips (id_NN_NNNNNNNN.wav): each ID's threshold is fitted to their scores")
    p.add_argument("--alarm-after", type=_at_least(1), default=None, metavar="N",
                   help="also raise an alarm where N clips of an ID in a row are flagged, one per such run (the "
                        "clips in index order, labels aside: the order recorded, where asd arrange numbered the "
                        "recorder's time-stamped files; label by label where each label is numbered apart, as in "
                        "the DCASE release); printed, and in asd score's --out")


def _calibration(args: argparse.Namespace, stored: bool = False,
                 machine_id: str | None = None) -> tuple[str, list | None]:
    """The calibration ``args`` ask for, and the calibration clips if given (checked before any work);
    ``stored``: saved detectors may carry calibration scores; ``machine_id`` as in :func:`asd.data.clips_at`."""
    from asd.data import clips_at, readable

    if args.calibration_clips is None:
        if args.calibration == "calibration" and not stored:
            raise UsageError("--calibration calibration needs --calibration-clips PATH")
        return args.calibration or "training", None
    if args.calibration not in (None, "calibration"):
        raise UsageError(f"--calibration-clips set the thresholds: drop --calibration {args.calibration}")
    clips = clips_at(args.calibration_clips, machine_id, "--id NN" if args.command == "score" else None)
    for clip in clips:  # a broken file stops the command now, not after training
        readable(clip.path)
    return "calibration", clips


def _checked_quantile(q: float) -> None:
    if not 0 < q < 1:
        raise UsageError(f"--decision-quantile must be between 0 and 1, got {q}")


def _warn_shared(calibration: list | None, others: list, what: str) -> None:
    """Warn when calibration clips are also the clips ``what`` (scored, trained on): their thresholds
    would then not stand for unseen normal recordings."""
    shared = {c.path.resolve() for c in calibration or []} & {c.path.resolve() for c in others}
    if shared:
        warnings.warn(f"{len(shared)} calibration clips are also {what} (e.g. {min(shared).name}): "
                      "thresholds fitted to them flag too few new clips", stacklevel=2)


def _machine_id(text: str) -> str:
    """An argparse ``type``: a machine ID, two digits (:func:`asd.recordings.checked_id`)."""
    from asd.data import DataError
    from asd.recordings import checked_id

    try:
        return checked_id(text)
    except DataError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


SEED_MAX = 2**32 - 1  # the largest seed np.random.seed (seeded with the others) takes


def _machine(text: str) -> str:
    """An argparse ``type``: a machine type's folder name (a trailing ``/``, as a shell completes a
    folder's name, dropped)."""
    from asd.data import DataError
    from asd.recordings import checked_machine

    try:
        return checked_machine(text.rstrip("/") or text)
    except DataError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _at_least(minimum: int, most: int | None = None):
    """An argparse ``type``: an integer of at least ``minimum`` (and at most ``most``; argparse
    words the error)."""
    def parse(text: str) -> int:
        value = int(text)  # ValueError: argparse says "invalid int value"
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def _checked_profile(profile: str | None) -> None:
    """The profile from ``--profile`` or ``ASD_PROFILE`` must exist (argparse checks only the flag)."""
    try:
        get_config(profile)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _checked_outputs(**paths: tuple[Path | None, bool]) -> None:
    """Before any work: each output (``option=(path, is_folder)``; ``positional=`` for a command's
    positional argument) must be writable where it goes, so that a long run does not end in a traceback."""
    for option, (path, folder) in paths.items():
        if path is None:
            continue
        flag = "" if option == "positional" else "--" + option.replace("_", "-") + " "
        if path.exists() and path.is_dir() != folder:
            raise UsageError(f"{flag}{path}: {'not a folder' if folder else 'is a folder, not a file'}")
        parent = path if folder else path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"{flag}{path}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK):
            raise UsageError(f"{flag}{path}: {parent} is not writable")


def _checked_json_out(path: Path | None, *inputs: Path | None) -> None:
    """``--out`` must name a ``.json`` file, none of ``inputs``: a slip of the shell (a detector's
    or a clip's name in its place) must not overwrite what the command reads."""
    if path is None:
        return
    if path.suffix.lower() != ".json":
        raise UsageError(f"--out {path}: the results are JSON: give a file name ending in .json")
    if any(i is not None and path.resolve() == i.resolve() for i in inputs):
        raise UsageError(f"--out {path}: the command reads that file: give the results another name")


def _not_a_file(path: Path) -> str:
    """Why ``path``, which is not a file, cannot be read as one."""
    return "a folder, not a file (the list itself: eval_data_list.csv)" if path.is_dir() else "no such file"


def _spaces(values: list[str]) -> str:
    """A hint where a list option's values were joined by commas (``--models pca,sequential``)."""
    return ": separate the values with spaces, not commas" if any("," in v for v in values) else ""


def _checked_data(path: Path) -> None:
    """``--data`` must name a folder."""
    if why := not_a_folder(path):
        raise UsageError(f"--data {path}: {why}")


def _synth(args: argparse.Namespace) -> None:
    from asd import synth

    _checked_profile(args.profile)
    _checked_outputs(positional=(args.out, True))
    cfg = get_config(args.profile, seed=args.seed)
    try:
        root = synth.generate(args.out, cfg.synth, seed=args.seed, hall_db=args.hall_db)
    except ValueError as err:
        raise UsageError(f"--hall-db: {err}") from None
    print(f"synthetic slider data ({cfg.profile} profile, seed {args.seed}{synth.hall_note(args.hall_db)}) in {root}")
    print(f"next: asd run --data {root}   (the eval set: asd run --data {root / 'eval_data'})")


def _checked_run(args: argparse.Namespace, root: Path) -> tuple[str, list | None]:
    """Every ``asd run`` argument checked before any work; the calibration and its clips."""
    from asd.data import list_clips
    from asd.experiment import check_idclf

    unknown = [m for m in args.models if m not in DETECTORS]
    if unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(DETECTORS)}"
                         + _spaces(args.models))
    if any("," in mid for mid in args.ids or []):
        raise UsageError(f"--ids {' '.join(args.ids)}{_spaces(args.ids)}")
    check_idclf(args.models, per_id=args.per_id)
    _checked_quantile(args.decision_quantile)
    _checked_profile(args.profile)
    _checked_json_out(args.out, args.ground_truth)
    _checked_outputs(out=(args.out, False), scores_dir=(args.scores_dir, True), save_models=(args.save_models, True),
                     figures=(args.figures, True))
    if args.ground_truth is not None and not args.ground_truth.is_file():
        raise UsageError(f"--ground-truth {args.ground_truth}: {_not_a_file(args.ground_truth)}")
    calibration, calibration_clips = _calibration(args)
    if calibration_clips:
        _warn_shared(calibration_clips, list_clips(root, args.machine, "train"), "training clips")
    if calibration == "held-out" and "pca" in args.models:
        raise UsageError("pca holds out no training clips: --calibration held-out needs networks only "
                         "(or set the thresholds with --calibration-clips PATH)")
    return calibration, calibration_clips


def _checked_threshold_clips(args: argparse.Namespace, cfg: Config, calibration: str,
                             calibration_clips: list | None, sel, device: str) -> None:
    """Where the run must set decision thresholds (``--scores-dir``, or a calibration asked for),
    every ID the run uses (``sel``, :func:`asd.experiment.select_clips`) has the normal clips a
    gamma fit needs (:func:`asd.metrics.fit_gamma`), and calibration clips can be read whole,
    checked before the training rather than after it."""
    import torch

    from asd.experiment import check_calibration_clips
    from asd.features import extract
    from asd.train import split_clips

    if not (args.scores_dir or _decisions_asked(args, calibration_clips)):
        return
    found, ids = [c.machine_id for c in sel.train], sel.ids
    if calibration == "calibration":
        check_calibration_clips(calibration_clips, args.machine, ids)
        # their frames now, cached for Results.calibrate: a clip too short or holding NaN stops the run before training
        extract(calibration_clips, cfg.feature, home() / "features", False, device=torch.device(device))
        counts = {"the calibration clips": [c.machine_id for c in calibration_clips]}
    elif calibration == "held-out":
        counts = {f"the clips {name} holds out": [found[i] for i in split_clips(
            found, cfg.fit[name].validation_split, cfg.seed)[1]] for name in args.models}
    else:
        counts = {"the training clips": found}
    for what, clip_ids in counts.items():
        _enough_for_thresholds(what, clip_ids, ids)


def _warn_numbered_apart(clips: list) -> None:
    """``--alarm-after`` on clips whose labels are numbered apart: they have no time order to count in."""
    from asd.data import numbered_apart

    if apart := numbered_apart(clips):
        warnings.warn(f"ID(s) {', '.join(apart)}: normal and anomalous clips are numbered apart (as in the DCASE "
                      "release), so they have no common time order: --alarm-after counts them label by label")


def _decisions_asked(args: argparse.Namespace, calibration_clips: list | None) -> bool:
    """Whether the command line sets how clips are flagged (a calibration, a quantile of its own) or
    asks for alarms."""
    return bool(args.calibration or calibration_clips or args.quantile_given or args.alarm_after)


def _enough_for_thresholds(what: str, clip_ids: list[str], ids: list[str]) -> None:
    """A :class:`UsageError` unless ``clip_ids`` (the ID of each clip ``what`` names) hold the
    normal clips per ID in ``ids`` that a gamma fit needs (:data:`asd.config.MIN_GAMMA_SCORES`)."""
    for mid in ids:
        if clip_ids.count(mid) < MIN_GAMMA_SCORES:
            raise UsageError(f"ID {mid}: {what} number {clip_ids.count(mid)}; a decision threshold "
                             f"needs at least {MIN_GAMMA_SCORES} normal clips per ID")


def _run(args: argparse.Namespace) -> None:
    from asd.data import DataError, dataset_root, unevaluable
    from asd.experiment import run_selection, select_clips

    _checked_data(args.data)
    root = dataset_root(args.data, args.machine)
    if root != args.data:
        print(f"asd: {args.data} is a release root: using {root} (the eval set: --data {args.data / 'eval_data'})",
              file=sys.stderr)
    calibration, calibration_clips = _checked_run(args, root)
    device = _checked_device(args.device)
    if args.concurrent and not device.startswith("cuda"):
        warnings.warn(f"--concurrent trains on a CUDA device only: on {device} the networks train one after another")
    cfg = get_config(args.profile, seed=args.seed, machine=args.machine, precision=args.precision)
    require_labels = args.scores_dir is None and args.save_models is None  # else scored, evaluated if they can be
    # the clips, checked as the run will check them: said before the training, which can take hours
    sel = select_clips(cfg, root, args.machine, args.ids, args.ground_truth, require_labels, args.max_train)
    if args.ground_truth is None and sel.ground_truth is not None:
        print(f"asd: the test clips' labels: {sel.ground_truth} (--ground-truth LIST gives others)", file=sys.stderr)
    if args.ids is None:
        for mid in sel.left_out:
            print(f"asd: ID {mid} found, not in the report's set: --ids all includes it", file=sys.stderr)
    if args.epochs is not None:
        cfg = cfg.with_epochs(args.epochs)
    _checked_threshold_clips(args, cfg, calibration, calibration_clips, sel, device)
    results = run_selection(cfg, sel, args.models, device=device, per_id=args.per_id, progress=not args.quiet,
                            cache=not args.no_cache, concurrent=args.concurrent)
    if calibration_clips:
        results.calibrate(calibration_clips, progress=not args.quiet)
    if args.alarm_after is not None:
        _warn_numbered_apart(results.test.clips)
    print(f"data: {results.data} | machine: {args.machine} | IDs: {' '.join(results.unique_ids)} | "
          f"profile: {cfg.profile} | device: {results.device}")
    if args.max_train is not None:
        print("training clips (--max-train): " + ", ".join(f"ID {mid} {n}" for mid, n in results.train_clips.items()))
    decisions = bool(args.scores_dir or _decisions_asked(args, calibration_clips))
    if results.evaluable:
        print(results.table())
    elif results.test.clips:
        print(f"the test clips cannot be evaluated ({'; '.join(unevaluable(results.test.clips))}): scores only")
    if decisions or not results.evaluable:  # without labels, shown for information (--save-models alone)
        print(_flagged(results, args.decision_quantile, calibration, strict=decisions, alarm_after=args.alarm_after))
    if args.out:
        results.save(args.out, args.decision_quantile, calibration)
        print(f"results written to {args.out}")
    if args.scores_dir and not results.test.clips:
        warnings.warn(f"--scores-dir {args.scores_dir}: no test clips, no score files (the thresholds are above)")
    if args.scores_dir and results.test.clips:
        _write_scores(results, args, calibration)
    if args.save_models:
        for name in results.models:
            results.save_model(name, args.save_models / f"{name}.pt")
            try:  # said now, not when asd score first needs them
                results.thresholds(name, args.decision_quantile, calibration)
            except DataError as err:
                warnings.warn(f"{args.save_models / f'{name}.pt'}: saved, but {err}: asd score will need "
                              "--calibration-clips PATH (normal clips of each ID) to flag clips")
        same = " --calibration held-out" if calibration == "held-out" else ""  # this run's thresholds
        print(f"detectors saved to {args.save_models}/<model>.pt: score new clips with "
              f"asd score {args.save_models}/<model>.pt --clips FOLDER{same}")
    if args.figures:
        _draw_run(results, args, calibration)


def _score(args: argparse.Namespace) -> int:
    """``asd score``; its exit status: 1 where ``--fail-on-alarm`` and an alarm was raised, else 0."""
    from asd import monitor
    from asd.data import clips_at, unique_ids
    from asd.experiment import check_calibration_clips, load_model, saved_results

    _checked_score(args)
    calibration, calibration_clips = _calibration(args, stored=True, machine_id=args.id)
    saved = [load_model(path) for path in args.models]
    if args.calibration is None and calibration_clips is None and all(len(s["calibration_ids"]) for s in saved):
        calibration = "calibration"  # the thresholds the run that saved them fitted to normal clips kept apart
        print("thresholds: from the calibration clips scored when the detectors were saved "
              "(--calibration training: from their training clips)")
    twin = next((name for name, n in Counter(s["name"] for s in saved).items() if n > 1), None)
    if twin is not None:
        files = ", ".join(str(s["path"]) for s in saved if s["name"] == twin)
        raise UsageError(f"two {twin} detectors ({files}): their score files would have the same names; "
                         "score them one at a time")
    device = _checked_device(args.device)
    clips, names = clips_at(args.clips, machine_id=args.id), [s["name"] for s in saved]
    if args.ground_truth is not None:
        clips = _labelled(clips, args.ground_truth, saved[0]["machine"])
    elif found := _ground_truth_beside(clips):
        print(f"asd: the clips' labels: {found} (found beside the eval set; --ground-truth LIST gives others)",
              file=sys.stderr)
        clips = _labelled(clips, found, saved[0]["machine"])
    with monitor.state_lock(args.alarm_state):  # a second call on the same state waits, then reads what this one wrote
        state = monitor.load_state(args.alarm_state, args.alarm_after)
        if args.new_only:
            clips = _only_new(clips, state, saved, args.alarm_state)
            if not clips:
                return 0
        else:  # --new-only picks the clips after those counted; others are checked to be so
            monitor.check_after_counted(state, clips, names, args.alarm_state)
        _warn_shared(calibration_clips, clips, "clips to score")
        if args.alarm_after is not None:
            _warn_numbered_apart(clips)
        if calibration_clips:
            _enough_for_thresholds("the calibration clips", [c.machine_id for c in calibration_clips],
                                   unique_ids(clips))
        for detector in saved:  # every detector can score these clips and set its thresholds: checked before work
            unscored = saved_results(detector, clips, device)
            if calibration_clips:
                check_calibration_clips(calibration_clips, unscored.machine, list(unscored.id_index))
            else:
                unscored.thresholds(detector["name"], args.decision_quantile, calibration)
        raised = _score_each(args, saved, clips, device, calibration, calibration_clips, state)
    if args.fail_on_alarm and raised:
        print(f"asd: {_count(raised, 'alarm')} raised: exit status 1 (--fail-on-alarm)", file=sys.stderr)
        return 1
    return 0


def _checked_score(args: argparse.Namespace) -> None:
    """``asd score``'s options checked before any work: the quantile, the outputs, and the alarm
    options that need another."""
    if not args.models:  # nargs="*", so that a detector taken in by --clips can be named
        taken = [p for p in args.clips if p.suffix == ".pt"]
        hint = f": {taken[0]} went to --clips; give the detectors first (asd score MODEL... --clips PATH...)" \
            if taken else " (asd score MODEL... --clips PATH...)"
        raise UsageError("no detector file given" + hint)
    args.models = _detector_files(args.models)
    _checked_json_out(args.out, *args.models, args.alarm_state, args.ground_truth)
    _checked_quantile(args.decision_quantile)
    _checked_outputs(out=(args.out, False), scores_dir=(args.scores_dir, True), figures=(args.figures, True),
                     alarm_state=(args.alarm_state, False))
    if args.alarm_state and args.alarm_after is None:
        raise UsageError("--alarm-state FILE needs --alarm-after N: the run of flagged clips that raises an alarm")
    if args.new_only and not args.alarm_state:
        raise UsageError("--new-only needs --alarm-state FILE: the clips counted already are those it names")
    if args.fail_on_alarm and args.alarm_after is None:
        raise UsageError("--fail-on-alarm needs --alarm-after N: the run of flagged clips that raises an alarm")


def _detector_files(paths: list[Path]) -> list[Path]:
    """``paths`` with each folder replaced by the detector files in it (``asd run --save-models DIR``)."""
    files = []
    for path in paths:
        found = sorted(path.glob("*.pt")) if path.is_dir() else [path]
        if not found:
            raise UsageError(f"{path}: a folder without detector files (<model>.pt, from asd run --save-models)")
        files += found
    return files


def _only_new(clips, state: dict, saved: list[dict], path: Path) -> list:
    """``asd score --new-only``: the clips after those counted in the alarm ``state`` (at ``path``),
    less those held back as still being written (:func:`asd.monitor.held_back`), each said; none: nothing
    to score, also said."""
    from asd import monitor

    new, left_out = monitor.new_clips(clips, state, [s["name"] for s in saved])
    monitor.warn_written_after(path, left_out)
    usual = max((s["clip_seconds"] for s in saved if s.get("clip_seconds")), default=None)
    new, held = monitor.held_back(new, usual)
    for line in held:
        print(line)
    if not new:
        print(f"no {'other ' if held else ''}clips after those counted in {path}: nothing to score")
    elif left_out:
        print(f"{_count(len(left_out), 'clip')} counted already in {path}: left out")
    return new


def _ground_truth_beside(clips) -> Path | None:
    """The ``eval_data_list.csv`` of unlabelled ``clips`` that lie in a release's test folder
    (``eval_data/<machine>/test``), found in or beside its eval root as ``asd run`` finds it."""
    from asd.data import UNLABELLED, find_ground_truth, is_release

    if not any(c.label == UNLABELLED for c in clips):
        return None
    folder = Path(os.path.commonpath([str(c.path.absolute().parent) for c in clips]))
    return find_ground_truth(folder.parent.parent) if folder.name == "test" and is_release(folder) else None


def _labelled(clips, path: Path, machine: str) -> list:
    """``asd score --ground-truth``: the unlabelled ``clips`` with their labels from the list at
    ``path`` (:func:`asd.data.read_ground_truth`); one the list lacks is an error."""
    from dataclasses import replace

    from asd.data import UNLABELLED, DataError, read_ground_truth

    if not path.is_file():
        raise UsageError(f"--ground-truth {path}: {_not_a_file(path)}")
    labels = read_ground_truth(path, machine)
    missing = [c.path.name for c in clips if c.label == UNLABELLED and c.path.name not in labels]
    if missing:
        raise DataError(f"{and_more(missing)}: not in the ground-truth list {path}")
    return [replace(c, label=labels[c.path.name]) if c.label == UNLABELLED else c for c in clips]


def _score_each(args: argparse.Namespace, saved: list[dict], clips, device: str, calibration: str,
                calibration_clips, state: dict | None) -> int:
    """``asd score``'s work, once every input is checked: each detector scores the clips and says
    what it flags; the files asked for are written, and the alarm state advanced. Returns how
    many alarms the detectors raised (none without ``--alarm-after``)."""
    from asd import monitor
    from asd.data import UNLABELLED, unevaluable
    from asd.experiment import describe_clips, score_clips

    scored = describe_clips(clips)
    print(f"scored: {scored}")
    if any(c.label != UNLABELLED for c in clips) and (why := unevaluable(clips)):  # labels given, yet no AUC
        print(f"no AUC/pAUC ({'; '.join(why)}): scores and decisions only")
    report, extracted, raised = [], {}, 0  # the clips' frames, computed once for detectors of the same features
    for detector in saved:
        results = score_clips(detector, clips, device, progress=not args.quiet, extracted=extracted)
        if calibration_clips:
            results.calibrate(calibration_clips, progress=not args.quiet)
        print(f"{detector['path']} ({detector['name']}, trained on {results.data}) | {_count(len(clips), 'clip')}, "
              f"IDs {' '.join(results.unique_ids)} | device: {results.device}")
        if results.evaluable:
            print(results.table())
        runs = {detector["name"]: monitor.carried(state, detector["name"])}
        print(_flagged(results, args.decision_quantile, calibration, alarm_after=args.alarm_after, alarm_runs=runs))
        if args.scores_dir:
            _write_scores(results, args, calibration)
        if args.figures:
            _save_figures(_timelines(results, args, calibration, runs), args.figures,
                          f"{detector['name']} trained on {results.data}")
        if args.out:
            entries = results.clip_report(args.decision_quantile, calibration, args.alarm_after, runs)
            report += [{"model": name, "file": str(detector["path"]), "trained_on": results.data, **entry}
                       for name, entry in entries.items()]
        if state is not None:
            monitor.advance(state, results, args.decision_quantile, calibration)
        if args.alarm_after is not None:
            name = detector["name"]
            raised += int(results.alarms(name, args.alarm_after, args.decision_quantile, calibration, runs[name]).sum())
    if args.out:
        _write_report(args.out, clips, scored, report, args.decision_quantile, calibration, args.alarm_after)
    if state is not None:
        _write_alarm_state(args.alarm_state, state)
    return raised


def _write_alarm_state(path: Path, state: dict) -> None:
    from asd.utils import atomic_write_json

    atomic_write_json(path, state, sort_keys=True)
    print(f"runs of flagged clips written to {path}: the next asd score --alarm-state {path} carries them on")


def _write_report(path: Path, clips, data: str, detectors: list[dict], quantile: float, calibration: str,
                  alarm_after: int | None) -> None:
    from datetime import datetime, timezone

    from asd.utils import atomic_write_json

    blob = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "decision_quantile": quantile, "calibration": calibration, "alarm_after": alarm_after, "data": data,
            "clips": [{"file": c.path.name, "path": str(c.path), "id": c.machine_id, "label": c.label_name}
                      for c in clips],
            "detectors": detectors}
    atomic_write_json(path, blob)
    print(f"clips, thresholds, scores and decisions written to {path}")


def _save_figures(figures: dict, folder: Path, data: str) -> None:
    """Each figure as ``folder/<stem>.png``, headed by what its numbers were measured on (a figure
    file travels without the command that made it)."""
    import textwrap

    folder.mkdir(parents=True, exist_ok=True)
    for stem, fig in figures.items():
        fig.suptitle("\n".join(textwrap.wrap(data, 100)), fontsize=8, color="0.3")
        fig.savefig(folder / f"{stem}.png", dpi=100)
        print(f"figure written to {folder / stem}.png")


def _timelines(results, args: argparse.Namespace, calibration: str,
               alarm_runs: dict[str, dict[str, int]] | None = None) -> dict:
    """Each model's test scores, clip by clip in recording order, against its thresholds (and its
    alarms, with ``--alarm-after``, counted on from ``alarm_runs[model]``)."""
    from asd.data import DataError, time_order
    from asd.plots import score_timeline

    order, drawn = time_order(results.test.clips), {}
    names, ids = [results.test.clips[i].path.name for i in order], results.test.clip_ids[order]
    for name, model in results.models.items():
        try:
            limits = results.thresholds(name, args.decision_quantile, calibration)
        except DataError:  # said with the thresholds: nothing to draw the scores against
            continue
        drawn[f"{name}_{results.machine}"] = score_timeline(names, ids, model.scores[order], limits,
                                                            alarm_after=args.alarm_after,
                                                            alarm_runs=(alarm_runs or {}).get(name))
        flagged = _flagged_clips(results, name, limits, results.decisions(name, args.decision_quantile, calibration))
        if flagged is not None:
            drawn[f"{name}_{results.machine}_flagged"] = flagged
    return drawn


def _flagged_clips(results, name: str, limits: dict[str, float], decisions, shown: int = 2):
    """Model ``name``'s ``shown`` highest-scoring flagged clips (``decisions``, against ``limits``),
    each as its standardised log-mel above its vectors' scores over time
    (:func:`asd.plots.errors_over_time`): when in the clip, and in which bands, the detector was
    surprised; None when it flags no clip."""
    from asd.plots import errors_over_time

    scores, ids = results.models[name].scores, results.test.clip_ids
    top = _highest_flagged(scores, decisions)[:shown]
    if not top:
        return None
    feature = results.cfg.feature
    panels = {f"{results.test.clips[i].path.name} ({scores[i]:.4g})":
              (results.test.subset([i]).frames, results.vector_scores(name, i)) for i in top}
    return errors_over_time(panels, feature.hop_length / feature.sample_rate, feature.n_frames,
                            feature.sample_rate, thresholds=[limits[ids[i]] for i in top],
                            ylabel="vector score (-log p(own ID))" if name == "idclf" else "vector error (MSE)")


def _draw_run(results, args: argparse.Namespace, calibration: str) -> None:
    """``asd run --figures``: what a run learnt and how its scores fall, as the book draws them."""
    from asd import metrics, plots
    from asd.data import DataError

    figures = {}
    curves = {name if key == "all" else f"{name} ID {key}": history for name, model in results.models.items()
              for key, history in model.histories.items() if history.steps}  # PCA fits in one step
    if curves:
        figures["training"] = plots.training_curves(curves)
    if results.test.clips:
        figures |= _timelines(results, args, calibration)
        if results.evaluable:
            scores = {name: model.scores for name, model in results.models.items()}
            y_true, clip_ids = results.test.y_true, results.test.clip_ids
            figures["roc"] = plots.roc_curves(y_true, clip_ids, scores, results.cfg.max_fpr)
            figures["scores"] = plots.score_histograms(y_true, clip_ids, scores)
            figures["auc"] = plots.score_bars(metrics.table(results.rows), "auc",
                                              title="AUC per machine ID")
            if results.synthetic:  # only the stand-in knows each clip's fault
                try:
                    figures["faults"] = plots.group_aucs(results.auc_by_fault())
                except DataError as err:
                    warnings.warn(f"no faults.png: {err}")
    if not figures:
        warnings.warn(f"--figures {args.figures}: nothing to draw (no training curves, as PCA fits in one step, "
                      "and no test clips)")
        return
    _save_figures(figures, args.figures, f"data: {results.data}")


def _write_scores(results, args: argparse.Namespace, calibration: str) -> None:
    results.write_scores(args.scores_dir, args.decision_quantile, calibration)
    print(f"anomaly scores and decisions written to {args.scores_dir}/<model>/"
          f"{{anomaly_score,decision_result}}_{results.machine}_id_<NN>.csv")


def _count(n: int, noun: str) -> str:
    """``1 clip``, ``2 clips``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _flagged(results, quantile: float, calibration: str, shown: int = 5, strict: bool = True,
             alarm_after: int | None = None, alarm_runs: dict[str, dict[str, int]] | None = None) -> str:
    """Per model and ID, the decision threshold and how many test clips it flags as anomalous;
    then the ``shown`` highest-scoring flagged clips and, with ``alarm_after``, the alarms per ID
    (:meth:`asd.experiment.Results.alarms`, counted on from ``alarm_runs[model]``). A model without thresholds
    is an error if ``strict`` (decisions were asked for), else a line saying why."""
    from asd.data import DataError, time_order

    ids = results.test.clip_ids
    rule = f"the {quantile} quantile of a gamma fit to the ID's {calibration} clips' scores"
    lines = [f"clips flagged anomalous (score above {rule}):" if len(ids) else
             f"no test clips: trained only; decision thresholds ({rule}):"]
    for name in results.models:
        try:
            limits, scores = results.thresholds(name, quantile, calibration), results.models[name].scores
        except DataError as err:
            if strict:
                raise
            lines.append(f"  {err}")
            continue
        if not len(ids):
            lines.append(f"  {name:<11} " + "   ".join(f"ID {mid}: {limits[mid]:.4g}" for mid in results.unique_ids))
            continue
        flagged = results.decisions(name, quantile, calibration)
        cells = [f"ID {mid}: {int(flagged[ids == mid].sum())}/{int((ids == mid).sum())} (threshold {limits[mid]:.4g})"
                 + _normal_flagged(flagged, ids == mid, results.test.y_true) for mid in results.unique_ids]
        lines.append(f"  {name:<11} " + "   ".join(cells))
        top = _highest_flagged(scores, flagged)
        if top:
            named = and_more([f"{results.test.clips[i].path.name} ({scores[i]:.4g})" for i in top], shown)
            lines.append(f"  {'':<11} highest: {named}")
        if alarm_after is not None:
            runs = (alarm_runs or {}).get(name, {})
            raised = results.alarms(name, alarm_after, quantile, calibration, runs)
            order = time_order(results.test.clips)
            cells = [_alarm_cell(mid, [results.test.clips[i].path.name for i in order if raised[i] and ids[i] == mid])
                     for mid in results.unique_ids]
            carried = ", ".join(f"ID {mid}: {runs[mid]}" for mid in results.unique_ids if runs.get(mid))
            lines.append(f"  {'':<11} alarms ({alarm_after} flagged in a row"
                         f"{f'; flagged before these: {carried}' if carried else ''}): " + "   ".join(cells))
    return "\n".join(lines)


def _normal_flagged(flagged, mine, y_true) -> str:
    """``, normal 22/50``: of an ID's test clips (``mine``), the normal ones flagged, where its clips
    are labelled both ways: the false alarms among the flags."""
    normal, anomalous = mine & (y_true == 0), mine & (y_true == 1)
    return f", normal {int(flagged[normal].sum())}/{int(normal.sum())}" if normal.any() and anomalous.any() else ""


def _highest_flagged(scores, flagged) -> list[int]:
    """The indices of the flagged clips, highest score first."""
    import numpy as np

    return sorted(np.flatnonzero(flagged).tolist(), key=lambda i: -scores[i])


def _alarm_cell(mid: str, raised_at: list[str]) -> str:
    """``ID 00: 0``, ``ID 00: 1 (id_00_00000012.wav)``, ``ID 00: 3 (first id_00_00000012.wav)``."""
    if not raised_at:
        return f"ID {mid}: 0"
    return f"ID {mid}: {len(raised_at)} ({'first ' if len(raised_at) > 1 else ''}{raised_at[0]})"


def _cut(args: argparse.Namespace) -> None:
    from asd.recordings import cut

    _checked_outputs(out=(args.out, True))
    done = cut(args.sources, args.out, args.seconds)
    if done.made:
        first, last = done.made[0].name, done.made[-1].name
        print(f"{_count(len(done.made), 'clip')} of up to {args.seconds} s written to {args.out}: "
              f"{first}{'' if first == last else f' ... {last}'}")
    if done.kept:
        print(f"{_count(done.kept, 'clip')} there already, the same audio: kept")
    if done.short:
        print(f"final piece under {args.seconds / 2:g} s dropped from {and_more(done.short)}")
    out = shlex.quote(str(args.out))
    print(f"next: asd arrange {out} --out DATA --machine NAME --id NN (to train on them or keep them), "
          f"or asd score MODEL --clips {out} --id NN")


def _arrange(args: argparse.Namespace) -> None:
    from asd.recordings import arrange

    _checked_outputs(out=(args.out, True))
    if args.split == "test" and args.label is None:  # a label guessed wrong cannot be taken back by arranging again
        raise UsageError("--split test needs --label: normal (recordings known to be normal, e.g. to set "
                         "thresholds), anomaly (known faults) or unlabelled (recordings to check)")
    done = arrange(args.sources, args.out, args.machine, args.id, args.split, args.label or "normal", args.copy)
    folder, names = args.out / args.machine / args.split, args.out / args.machine / f"{args.split}_names.csv"
    if done.made:
        first, last = done.made[0][0].name, done.made[-1][0].name
        print(f"{_count(len(done.made), 'clip')} {'copied' if args.copy else 'linked'} into {folder}: "
              f"{first}{'' if first == last else f' ... {last}'} (originals in {names})")
    if done.relinked:
        print(f"{_count(len(done.relinked), 'link')} to moved recordings pointed at their new place (in {names})")
    if done.skipped:
        print(f"{done.skipped} already arranged: skipped")
    if done.missing:
        warnings.warn(f"{and_more(done.missing)}: link to a missing file ({done.missing[0].readlink()}): give the "
                      "recordings' new folder to asd arrange to point the links there")
    run = f"asd run --data {shlex.quote(str(args.out))} --machine {args.machine}"
    if args.split == "train":
        print(f"train on them: {run} --save-models DIR")
        return
    if args.label == "normal":  # normal recordings apart from the training ones: what thresholds are best set on
        print(f"set a detector's thresholds from them: asd run --data TRAINING --machine {args.machine} "
              f"--calibration-clips {shlex.quote(str(folder))} --save-models DIR")
    print(f"score them: {run} --scores-dir DIR")


def _download(args: argparse.Namespace) -> None:
    from asd.download import download

    _checked_outputs(positional=(args.dest, True))
    print(f"unpacked into {download(args.dest, args.which, args.machine)}")


def _bench(args: argparse.Namespace) -> None:
    from asd import bench
    from asd.data import dataset_root
    from asd.experiment import check_idclf, data_source, extract_selection, select_clips
    from asd.utils import atomic_write_json, resolve_device

    _checked_profile(args.profile)
    _checked_json_out(args.out)
    _checked_outputs(out=(args.out, False))
    cfg = get_config(args.profile, machine=args.machine, precision=args.precision)
    unknown = [m for m in args.models if m not in cfg.fit]
    if unknown:
        raise UsageError(f"asd bench times networks: {', '.join(unknown)} is not one; choose from {', '.join(cfg.fit)}"
                         + _spaces(args.models))
    device = resolve_device(_checked_device(args.device))
    if args.data:
        _checked_data(args.data)
        root = dataset_root(args.data, args.machine)
    else:
        try:
            root = data_source(cfg).dev
        except ValueError as err:  # ASD_EVAL_DATA without ASD_DATA
            raise UsageError(str(err)) from None
    # timing needs training clips only: test clips without labels (or none) are fine
    sel = select_clips(cfg, root, args.machine, require_labels=False)
    check_idclf(args.models, sel.ids)  # before any features are extracted
    prep = extract_selection(cfg, sel, progress=False, device=device)
    if args.max_clips is not None:
        prep.train = prep.train.subset(list(range(min(args.max_clips, len(prep.train)))))
    training = bench.bench_training(cfg, prep, args.models, args.epochs, device)
    features = bench.bench_features(prep.train.clips, cfg, device)
    info = bench.device_info(device)
    print(f"data: {root} | device: {info['device']} | {_count(len(prep.train), 'training clip')} | "
          f"asd loop in {cfg.precision}, plain loop in fp32")
    print(bench.format_training(training))
    print(f"features: librosa {features['librosa_clips_per_s']:.1f} clips/s, "
          f"torch {features['torch_clips_per_s']:.1f} clips/s")
    if args.out:
        blob = {"data": str(root), **info, "precision": cfg.precision, "training": training, "features": features}
        atomic_write_json(args.out, blob)
        print(f"timings written to {args.out}")


class _PipeTolerant:
    """``sys.stdout`` that goes on silently once the reader has gone (``asd run ... | head``): the
    work, and the files it writes after printing, are not lost to a BrokenPipeError."""

    def __init__(self, stream) -> None:
        self.stream, self.gone = stream, False

    def write(self, text: str) -> int:
        self._call("write", text)
        return len(text)

    def flush(self) -> None:
        self._call("flush")

    def _call(self, method: str, *args) -> None:
        if not self.gone:
            try:
                getattr(self.stream, method)(*args)
            except BrokenPipeError:
                self.gone = True

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextmanager
def _stdout_may_close() -> Iterator[None]:
    original = sys.stdout
    sys.stdout = tolerant = _PipeTolerant(original)
    try:
        yield
    finally:
        tolerant.flush()
        sys.stdout = original
        if tolerant.gone:  # what is still buffered goes nowhere, not into an error at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), original.fileno())


def _defaults_filled(args: argparse.Namespace) -> argparse.Namespace:
    """The defaults of options that may be repeated (their values add up, so argparse's default
    would be extended, not replaced) and of ``--decision-quantile``, noting whether it was given."""
    if args.command in ("run", "bench"):  # detector names (asd score's models are files), each once
        args.models = list(dict.fromkeys(args.models or NETWORKS))
    if hasattr(args, "decision_quantile"):
        args.quantile_given = args.decision_quantile is not None
        args.decision_quantile = DECISION_QUANTILE if args.decision_quantile is None else args.decision_quantile
    return args


def _checked_home() -> None:
    """A :class:`UsageError` unless the caches' folder (``ASD_HOME``, else the user's cache folder)
    can be written."""
    import tempfile

    cache = home()
    if cache.exists() and not cache.is_dir():
        raise UsageError(f"ASD_HOME {cache}: a file, not a folder")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache):
            pass
    except OSError as err:
        raise UsageError(f"{cache}: asd keeps its caches there, and cannot write there ({err.strerror}): "
                         "set ASD_HOME to a folder you can write") from None


def main(argv: list[str] | None = None) -> int:
    parser, argv = _parser(), sys.argv[1:] if argv is None else argv
    if not argv:  # a bare `asd`: the commands and where to start, not only a usage line
        parser.print_help(sys.stderr)
        return 2
    args = _defaults_filled(parser.parse_args(argv))
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"asd: warning: {message}\n"  # one line, no source
    try:
        return _dispatch(args)
    finally:  # main may be called in-process (a notebook, the tests): leave warnings as they were
        warnings.formatwarning = previous


def _dispatch(args: argparse.Namespace) -> int:
    """Run ``args.command``; its exit status (bad input 2, interrupted 130, a bug 3)."""
    from asd.data import DataError
    from asd.download import DownloadError

    try:
        if args.command in ("synth", "run", "score", "bench"):  # the caches, locks and the stand-in go there
            _checked_home()
        commands = {"synth": _synth, "run": _run, "score": _score, "cut": _cut, "arrange": _arrange,
                    "download": _download, "bench": _bench}
        with _stdout_may_close():
            status = commands[args.command](args) or 0  # asd score --fail-on-alarm may return 1
    except (DataError, DownloadError, UsageError) as err:
        print(f"asd: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asd: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: its traceback, and a status no alarm or bad input gives
        traceback.print_exc()
        print(f"asd: an unexpected error, a bug in asd: please report it with the lines above and "
              f"{_versions()}", file=sys.stderr)
        return 3
    return status
