"""A procedurally generated stand-in for the DCASE 2020 Task 2 slider data.

Each machine ID is a slide rail with its own mechanics: a carriage strokes back and forth
(trapezoidal velocity profile, dwell at the end stops), a motor whose harmonics follow the
speed, friction noise whose level follows the speed, damped end-stop impacts at every reversal,
and the steady tones of its drive (servo whine, gearing, fans). A factory surrounds it: coloured
noise with a slow drift and occasional distant events.
Faults follow the MIMII slider faults and, as in the real recordings, change the machine's own
process rather than only adding events to an unchanged machine: a dry rail (missing grease) rubs
louder and brighter and squeals; a damaged rail detunes and lengthens the end-stop resonances and
scrapes broadband at the damage on every pass; a loose belt loads the motor, makes the strokes
irregular and slips, and rattles. Every fault also loads the drive, whose tones move and change
level, so a faulty clip no longer sounds like its own machine (as real MIMII faults, measured in
``tests/test_synth.py``). A fault changes the clip's loudness no more than a few decibels, as the
real faults at hand do (REAL_FAULT_RISE_DB): the machine's sound is turned down until the clip is
at most MAX_RISE_DB x severity^3 louder than its normal twin. Each fault acts on its ID's own mechanics with a severity drawn
uniformly per clip, so some faults stay subtle. Every clip is rendered from its own seed, so any
single clip can be reproduced without the rest of the dataset.
"""
from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing
import shutil
import signal
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from asd.config import Config, SplitCounts, SynthConfig, home
from asd.data import GROUND_TRUTH, RELEASE_SETS, Clip, DataError
from asd.utils import atomic_write_bytes, atomic_write_json, exclusive, written_whole

MACHINE = "slider"
ANOMALIES = ("rail_damage", "loose_belt", "no_grease")
VERSION = 6  # bump whenever the sound changes, so that generated datasets are rebuilt
MARKER = ".complete"
STARTED = ".generating"  # written before the first clip: the folder is the generator's, even half-written
# Loudness, measured on the real slider audio beside this project (tests/test_synth.py checks the
# values where it is present): the level's sd over the 75 real ID 00 training clips, and how much
# louder MIMII's abnormal slider recording is than its normal one, per ID (0 dB set).
REAL_LEVEL_SD_DB = 0.10
REAL_FAULT_RISE_DB = {"00": 4.3, "02": 0.1, "04": 0.0, "06": 0.8}
LEVEL_SD_DB = REAL_LEVEL_SD_DB  # each clip's level around its ID's level_dbfs
# A fault raises the level by at most MAX_RISE_DB x severity^3 (severity uniform: median 0.75 dB,
# a quarter of the faults under 0.1 dB, a tenth over 4.4 dB).
MAX_RISE_DB = 6.0
# A louder hall (generate's hall_db) within this many dB: at +20 dB the loudest clips peak near -7 dBFS.
MAX_HALL_DB = 20.0

# Background noise floor (dB at Hz), fitted to the real slider id_00 training clips.
FLOOR_HZ = (0, 70, 164, 257, 351, 444, 538, 631, 725, 818, 912, 1006, 1107, 1220, 1343, 1479, 1629,
            1794, 1976, 2176, 2396, 2638, 2906, 3200, 3524, 3881, 4274, 4706, 5183, 5708, 6286,
            6922, 8000)
FLOOR_DB = (-76.3, -74.8, -71.1, -86.2, -79.7, -78.8, -80.8, -84.3, -84.1, -84.5, -85.2, -86.8,
            -84.5, -88.4, -86.5, -88.0, -88.7, -89.2, -90.8, -90.9, -92.3, -92.1, -92.3, -94.2,
            -94.6, -94.7, -96.0, -96.6, -97.4, -98.6, -98.6, -100.9, -105.3)


@dataclass(frozen=True)
class Rail:
    """Mechanics and surroundings of one slider (one machine ID)."""

    period_s: float  # one-way stroke, dwell included
    dwell: float  # fraction of a stroke spent at rest against the end stop
    ramp: float  # fraction of the travel spent accelerating (and again braking)
    jitter: float  # spread (log sd) of the stroke period between clips
    motor_hz: float  # motor fundamental at full speed
    harmonics: tuple[float, ...]  # amplitudes of the motor harmonics 1, 2, ...
    friction_hz: tuple[float, float]  # friction noise band
    modes: tuple[tuple[float, float], ...]  # end-stop resonances: (Hz, decay time in s)
    mix_db: tuple[float, float, float]  # motor, friction and impact gains
    snr_db: tuple[float, float]  # machine-to-background power ratio, range over clips
    tones: tuple[tuple[float, float, float], ...]  # drive's tones: (Hz, dB over floor per FFT bin, presence)
    tilt_db: float  # background slope relative to FLOOR_DB, dB per octave
    level_dbfs: float  # RMS level of every clip
    faults: tuple[float, float, float]  # probabilities of ANOMALIES for this ID
    severity: tuple[float, float]  # range over clips of the fault severity, 0 (none) .. 1
    squeal_hz: tuple[float, float]  # range of the dry-rail squeal frequency
    rub_hz: tuple[float, float]  # band of the dry or damaged rail's rubbing and scraping


RAILS: dict[str, Rail] = {
    "00": Rail(
        period_s=1.1, dwell=0.1, ramp=0.2, jitter=0.04, motor_hz=180.0,
        harmonics=(1.0, 0.5, 0.6, 0.25, 0.2, 0.1), friction_hz=(200.0, 1200.0),
        modes=((420.0, 0.04), (1130.0, 0.025), (2650.0, 0.012)), mix_db=(-3.0, -3.0, 3.0),
        snr_db=(-15.0, -5.0), tones=((248.0, 18.0, 1.0), (300.5, 10.0, 0.55), (2480.5, 14.0, 0.7),
                                     (4961.0, 14.0, 0.7), (1191.0, 10.0, 0.45), (72.0, 8.0, 0.4)),
        tilt_db=0.0, level_dbfs=-39.7, faults=(0.45, 0.3, 0.25), severity=(0.0, 1.0),
        squeal_hz=(1800.0, 4200.0), rub_hz=(1500.0, 7600.0),
    ),
    "01": Rail(
        period_s=1.6, dwell=0.15, ramp=0.25, jitter=0.05, motor_hz=140.0,
        harmonics=(1.0, 0.7, 0.3, 0.3, 0.15), friction_hz=(250.0, 1800.0),
        modes=((350.0, 0.05), (980.0, 0.03), (2300.0, 0.015)), mix_db=(-4.0, -2.0, 2.0),
        snr_db=(-12.0, -3.0), tones=((60.0, 12.0, 0.9), (120.0, 10.0, 0.8), (180.0, 8.0, 0.5),
                                     (1000.0, 10.0, 0.3)),
        tilt_db=-0.3, level_dbfs=-40.5, faults=(0.35, 0.35, 0.3), severity=(0.0, 1.0),
        squeal_hz=(2200.0, 4800.0), rub_hz=(1800.0, 7600.0),
    ),
    "02": Rail(
        period_s=2.3, dwell=0.2, ramp=0.3, jitter=0.1, motor_hz=95.0,
        harmonics=(1.0, 0.8, 0.5, 0.5, 0.3, 0.3, 0.2, 0.1), friction_hz=(120.0, 900.0),
        modes=((180.0, 0.08), (610.0, 0.04), (1650.0, 0.02)), mix_db=(-2.0, -4.0, 4.0),
        snr_db=(-10.0, 0.0), tones=((50.0, 12.0, 0.9), (100.0, 12.0, 0.9), (150.0, 8.0, 0.6),
                                    (3150.0, 12.0, 0.5), (620.0, 8.0, 0.3)),
        tilt_db=-0.5, level_dbfs=-41.5, faults=(0.3, 0.4, 0.3), severity=(0.0, 1.0),
        squeal_hz=(1200.0, 3000.0), rub_hz=(1200.0, 7000.0),
    ),
    "03": Rail(
        period_s=0.9, dwell=0.12, ramp=0.2, jitter=0.06, motor_hz=210.0,
        harmonics=(1.0, 0.4, 0.5, 0.2, 0.2), friction_hz=(300.0, 2000.0),
        modes=((520.0, 0.03), (1400.0, 0.02), (3300.0, 0.01)), mix_db=(-3.0, -3.0, 2.0),
        snr_db=(-11.0, -1.0), tones=((248.0, 14.0, 0.8), (496.0, 10.0, 0.5), (3720.0, 12.0, 0.5)),
        tilt_db=0.3, level_dbfs=-39.0, faults=(0.3, 0.3, 0.4), severity=(0.0, 1.0),
        squeal_hz=(1500.0, 3600.0), rub_hz=(2000.0, 7600.0),
    ),
    "04": Rail(
        period_s=0.6, dwell=0.15, ramp=0.15, jitter=0.05, motor_hz=260.0,
        harmonics=(1.0, 0.6, 0.4, 0.3, 0.1), friction_hz=(400.0, 2500.0),
        modes=((760.0, 0.03), (1900.0, 0.015), (4100.0, 0.008)), mix_db=(-4.0, -2.0, 3.0),
        snr_db=(-12.0, -2.0), tones=((300.0, 14.0, 0.8), (1500.0, 10.0, 0.4), (5200.0, 10.0, 0.5)),
        tilt_db=-0.1, level_dbfs=-40.0, faults=(0.35, 0.3, 0.35), severity=(0.0, 0.9),
        squeal_hz=(2500.0, 5500.0), rub_hz=(120.0, 700.0),
    ),
    "06": Rail(  # long, slow strokes of a heavy carriage, buried in a loud hall
        period_s=3.1, dwell=0.3, ramp=0.35, jitter=0.12, motor_hz=75.0,
        harmonics=(1.0, 0.9, 0.7, 0.5, 0.4, 0.3, 0.2), friction_hz=(90.0, 700.0),
        modes=((140.0, 0.1), (480.0, 0.05), (1300.0, 0.025)), mix_db=(-2.0, -5.0, 2.0),
        snr_db=(-18.0, -8.0), tones=((50.0, 14.0, 0.9), (150.0, 10.0, 0.7), (1750.0, 10.0, 0.5),
                                     (3500.0, 10.0, 0.4)),
        tilt_db=-0.6, level_dbfs=-42.0, faults=(0.3, 0.4, 0.3), severity=(0.0, 1.0),
        squeal_hz=(900.0, 2600.0), rub_hz=(900.0, 6000.0),
    ),
    "05": Rail(
        period_s=2.0, dwell=0.25, ramp=0.3, jitter=0.08, motor_hz=120.0,
        harmonics=(1.0, 0.9, 0.4, 0.4, 0.2, 0.2, 0.1), friction_hz=(150.0, 1100.0),
        modes=((240.0, 0.07), (720.0, 0.035), (1900.0, 0.02)), mix_db=(-2.0, -3.0, 4.0),
        snr_db=(-10.0, 0.0), tones=((50.0, 10.0, 0.8), (100.0, 12.0, 0.8), (2750.0, 10.0, 0.4)),
        tilt_db=-0.2, level_dbfs=-41.0, faults=(0.35, 0.35, 0.3), severity=(0.0, 1.0),
        squeal_hz=(1400.0, 3400.0), rub_hz=(1200.0, 7000.0),
    ),
}


@dataclass(frozen=True)
class Motion:
    """Carriage trajectory sampled at the audio rate."""

    speed: np.ndarray  # carriage speed, 1 = nominal peak
    motor: np.ndarray  # motor speed (differs from the carriage when the belt slips)
    position: np.ndarray  # 0 .. 1 along the rail
    stops: np.ndarray  # sample indices of the end-stop arrivals


def _smooth(rng: np.random.Generator, n: int, sr: int, hz: float) -> np.ndarray:
    """Unit-variance noise varying at about ``hz`` (linear interpolation of random knots)."""
    k = int(n / sr * hz) + 2
    return np.interp(np.arange(n), np.linspace(0, n, k), rng.standard_normal(k))


def _shaped_noise(rng: np.random.Generator, n: int, gain_db: np.ndarray) -> np.ndarray:
    """Unit-variance Gaussian noise with power spectrum ``gain_db`` (over the rfft bins)."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    x = np.fft.irfft(spec * 10 ** (gain_db / 20), n)
    return x / x.std()


def _band_db(n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    """Gain (dB) of a smooth band-pass over the rfft bins: flat in [lo, hi], 12 dB/oct skirts."""
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 1.0)
    return -12 * (np.log2(np.maximum(lo / f, 1)) + np.log2(np.maximum(f / hi, 1)))


def _ring(modes: tuple[tuple[float, float], ...], sr: int, rng: np.random.Generator) -> np.ndarray:
    """Impulse response of damped resonant modes, each slightly detuned."""
    t = np.arange(int(sr * 4 * max(d for _, d in modes))) / sr
    h = sum(np.exp(-t / d) * np.sin(2 * np.pi * (f * rng.uniform(0.97, 1.03) * t + rng.random()))
            for f, d in modes)
    return h / np.abs(h).max()


def _place(n: int, at: np.ndarray, amps: np.ndarray, h: np.ndarray) -> np.ndarray:
    """A signal of length ``n`` with ``h`` scaled by ``amps`` starting at each sample in ``at``."""
    y = np.zeros(n + len(h))
    for i, a in zip(at[at < n], amps[at < n]):
        y[i:i + len(h)] += a * h
    return y[:n]


def _trapezoid_position(u: np.ndarray, r: float) -> np.ndarray:
    """Travelled fraction at normalised time ``u`` of a trapezoidal profile with ramp ``r``."""
    a = np.clip(u, 0, r)
    b = np.clip(u - r, 0, 1 - 2 * r)
    c = np.clip(u - 1 + r, 0, r)
    return (a * a / (2 * r) + b + c - c * c / (2 * r)) / (1 - r)


def _motion(rail: Rail, rng: np.random.Generator, n: int, sr: int, slack: float) -> Motion:
    """Jittered trapezoidal strokes; ``slack`` (a loose belt) makes them irregular and slip."""
    period = rail.period_s * np.exp(rail.jitter * rng.standard_normal())
    k = 2 * int(n / sr / period) + 4
    durs = period * np.exp((0.06 + 0.2 * slack) * rng.standard_normal(k))
    ends = np.cumsum(durs) - rng.uniform(0, period)
    t = np.arange(n) / sr
    i = np.searchsorted(ends, t, side="right")
    travel = durs * (1 - rail.dwell)
    u = (t - ends[i] + durs[i]) / travel[i]
    peak = period * (1 - rail.dwell) / travel[i]  # a shorter stroke runs faster
    motor = np.clip(np.minimum(u, 1 - u) / rail.ramp, 0, 1) * peak
    motor *= 1 + (0.01 + 0.08 * slack) * _smooth(rng, n, sr, 6.0)
    slip = np.clip(_smooth(rng, n, sr, 12.0) - 1.0, 0, None)
    x = _trapezoid_position(np.clip(u, 0, 1), rail.ramp)
    forward = (i + int(rng.integers(2))) % 2 == 0
    stops = np.round((ends - durs + travel) * sr).astype(int)
    return Motion(speed=motor * (1 - slack * slip), motor=motor,
                  position=np.where(forward, x, 1 - x), stops=stops[(stops >= 0) & (stops < n)])


def _machine(rail: Rail, m: Motion, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Motor harmonics, friction noise and end-stop impacts of one clip."""
    n = len(m.speed)
    z = np.exp(2j * np.pi * np.cumsum(rail.motor_hz * m.motor) / sr)
    k = len(rail.harmonics)
    jitter = np.exp(0.2 * rng.standard_normal(k) + 2j * np.pi * rng.random(k))  # level and phase
    coef = np.multiply(rail.harmonics, jitter)
    partials = np.zeros(n, complex)
    for c in coef[::-1]:  # Horner: sum of coef[h - 1] * z**h
        partials = (partials + c) * z
    motor = partials.imag * (np.sqrt(m.motor) + 0.05)
    friction = _shaped_noise(rng, n, _band_db(n, sr, *rail.friction_hz))
    friction *= m.speed * np.exp(0.3 * _smooth(rng, n, sr, 20.0))
    strength = np.exp(0.3 * rng.standard_normal(len(m.stops)))
    impacts = _place(n, m.stops, strength, _ring(rail.modes, sr, rng))
    gains = 10 ** (np.asarray(rail.mix_db) / 20)
    return gains[0] * motor / np.sqrt(2) + gains[1] * friction + gains[2] * impacts


def _loaded(rail: Rail, s: float, rng: np.random.Generator) -> Rail:
    """``rail`` with its drive under a fault's load at severity ``s``: the drive runs up to 10 % x ``s``
    faster or slower, so every tone moves by the same factor, and each tone's level changes by up to 8 x ``s`` dB."""
    k = 1 + rng.choice((-1, 1)) * rng.uniform(0.5, 1) * 0.1 * s
    return replace(rail, tones=tuple((f * k, db + rng.uniform(-8, 8) * s, p) for f, db, p in rail.tones))


def _rail_damage(rail: Rail, s: float, rng: np.random.Generator) -> Rail:
    """A damaged rail: end-stop resonances detuned and ringing longer, harder impacts, rougher rubbing."""
    modes = tuple((f * (1 + rng.uniform(-0.25, 0.25) * s), d * (1 + 2 * s)) for f, d in rail.modes)
    motor, friction, impact = rail.mix_db
    lo, hi = rail.friction_hz
    return replace(rail, modes=modes, friction_hz=(lo, hi * (1 + 3 * s)),
                   mix_db=(motor, friction + 24 * s, impact + 6 * s))


def _loose_belt(rail: Rail, s: float, rng: np.random.Generator) -> Rail:
    """A loose belt: a loaded, slower motor whose low harmonics grow; the slipping belt rubs and flaps."""
    harmonics = tuple(a * (1 + 3 * s / h) for h, a in enumerate(rail.harmonics, 1))
    lo, hi = rail.friction_hz
    motor, friction, impact = rail.mix_db
    return replace(rail, motor_hz=rail.motor_hz * (1 - rng.uniform(0.05, 0.2) * s), harmonics=harmonics,
                   friction_hz=(lo, hi * (1 + 3 * s)), mix_db=(motor + 20 * s, friction + 24 * s, impact + 6 * s))


def _no_grease(rail: Rail, s: float, rng: np.random.Generator) -> Rail:
    """A dry rail: the friction noise grows much louder and moves towards the rail's rubbing band."""
    band = tuple(f ** (1 - s) * r ** s for f, r in zip(rail.friction_hz, rail.rub_hz))
    motor, friction, impact = rail.mix_db
    return replace(rail, friction_hz=band, mix_db=(motor, friction + 45 * s, impact))


def _scrapes(rail: Rail, m: Motion, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Broadband scrapes and clicks (front and rear wheel) each time the carriage passes the damage."""
    n = len(m.speed)
    spot = rng.uniform(0.15, 0.85)
    side = m.position > spot
    at = np.flatnonzero(side[1:] != side[:-1])
    v = m.speed[at] + 0.1
    click = _ring(((rng.uniform(2000, 3500), 0.004), (rng.uniform(4000, 6500), 0.002)), sr, rng)
    width = int(rng.uniform(0.1, 0.4) * sr)
    scrape = _shaped_noise(rng, width, _band_db(width, sr, *rail.rub_hz)) * np.hanning(width)
    rear = at + (0.02 * sr / v).astype(int)
    return _place(n, np.r_[at, rear], np.r_[v, 0.7 * v], click) + _place(n, at, 0.6 * v, scrape)


def _rattle(rail: Rail, m: Motion, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Belt rattle: small knocks at a rate that follows the motor speed, and slaps at reversals."""
    n = len(m.speed)
    rate = 25.0 * m.motor / sr
    at = np.flatnonzero(rng.random(n) < rate)
    knock = _ring(((rng.uniform(150, 300), 0.02), (rng.uniform(600, 1200), 0.01)), sr, rng)
    amps = np.r_[rng.uniform(0.3, 1.0, len(at)), np.full(len(m.stops), 1.5)]
    return _place(n, np.r_[at, m.stops + int(0.05 * sr)], amps, knock)


def _squeal(rail: Rail, m: Motion, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Narrow-band squeal whose level follows the speed, with stick-slip flutter."""
    n = len(m.speed)
    f = rng.uniform(*rail.squeal_hz) * (1 + 0.01 * _smooth(rng, n, sr, 4.0))
    phase = 2 * np.pi * np.cumsum(f) / sr
    level = m.speed ** 1.5 * np.clip(1 + 0.5 * _smooth(rng, n, sr, 15.0), 0, None)
    return level * (np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi)))


class Fault(NamedTuple):
    """A fault: how it changes a rail's process at severity ``s``, the transients it adds on top,
    and their level (dB relative to the machine) at full severity."""

    process: Callable[[Rail, float, np.random.Generator], Rail]
    transients: Callable[[Rail, Motion, np.random.Generator, int], np.ndarray]
    level_db: float


FAULTS = {
    "rail_damage": Fault(_rail_damage, _scrapes, 30.0),
    "loose_belt": Fault(_loose_belt, _rattle, 20.0),
    "no_grease": Fault(_no_grease, _squeal, 6.0),
}


def _background(rail: Rail, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Unit-power steady sound at the microphone: the hall's coloured floor with the drive's tones
    (their levels given against the floor), slow drift and distant events."""
    f = np.fft.rfftfreq(n, 1 / sr)
    tilt = rng.normal(rail.tilt_db, 1.0) * np.log2(np.maximum(f, 30) / 1000)
    floor = 10 ** ((np.interp(f, FLOOR_HZ, FLOOR_DB) + tilt) / 20)
    spec = floor * (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f)))
    for hz, db, presence in rail.tones:
        k = round(hz * n / sr)
        if rng.random() < presence and 3 <= k < len(f) - 4:  # a line with weak sidebands: it wavers
            line = rng.uniform(0.05, 0.25) * (rng.standard_normal(7) + 1j * rng.standard_normal(7))
            line[3] = np.exp(2j * np.pi * rng.random())
            amplitude = floor[k] * np.sqrt(2 * n / 1024 * 10 ** ((db + rng.normal(0, 3)) / 10))
            spec[k - 3:k + 4] += amplitude * line
    high = 1 / (1 + (1000 / np.maximum(f, 1)) ** 2)
    y = sum(np.fft.irfft(spec * w, n) * _drift(rng, n, sr) for w in (1 - high, high))
    y = y / y.std() + _distant_events(rng, n, sr)
    return y / np.sqrt(np.mean(y ** 2))


def _drift(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Random gain whose level in dB wanders with a 1/f-like modulation spectrum."""
    k = int(n / sr * 40) + 2  # knots at 40 Hz
    f = np.fft.rfftfreq(k, 1 / 40)
    spec = rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f))
    d = np.fft.irfft(spec / np.maximum(f, 0.1) ** 0.6, k)
    d *= rng.uniform(0.2, 0.7) / d.std()
    return 10 ** (np.interp(np.arange(n), np.linspace(0, n, k), d) / 20)


def _distant_events(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Other machines nearby: a gated tone, knocks and short high beeps, each occasional."""
    t = np.arange(n) / sr
    y = np.zeros(n)
    if rng.random() < 0.15:
        gate = (t * rng.uniform(0.8, 3.0) + rng.random()) % 1 < rng.uniform(0.4, 0.8)
        y += 0.3 * gate * np.sin(2 * np.pi * rng.uniform(150, 1200) * t)
    knocks = rng.integers(0, n, rng.poisson(1.0))
    thud = _ring(((rng.uniform(80, 400), 0.08),), sr, rng)
    y += _place(n, knocks, rng.uniform(0.5, 3.0, len(knocks)), thud)
    for start in rng.integers(0, max(n - sr // 10, 1), rng.poisson(0.3)):
        seg = slice(start, start + sr // 10)
        y[seg] += 0.2 * np.sin(2 * np.pi * rng.uniform(5000, 7500) * t[seg])
    return y


def _streams(seed: int) -> tuple[np.random.Generator, ...]:
    """The independent random streams of a clip: machine, background and fault."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def _severity(rail: Rail, fault: np.random.Generator) -> float:
    """The fault severity, the first draw of the fault stream: uniform over the rail's range."""
    lo, hi = rail.severity
    return lo + (hi - lo) * fault.random()


def fault_severity(machine_id: str, seed: int) -> float:
    """The severity (0 none .. 1) of a faulty clip of ``machine_id`` rendered from ``seed``,
    the same for every fault type."""
    return _severity(RAILS[machine_id], _streams(seed)[2])


def render_clip(machine_id: str, anomaly: str | None, seed: int, duration_s: float = 10.0,
                sample_rate: int = 16000, hall_db: float = 0.0) -> np.ndarray:
    """One clip of slider ``machine_id`` (float32 mono in [-1, 1]), ``anomaly`` None for normal.

    The machine, the background and the fault draw from separate streams of ``seed``: a faulty
    clip keeps the hall noise and distant events (and, unless the belt is loose, the motion) of
    its normal twin; the drive's tones in the background move with the fault. ``hall_db`` makes
    the background (the hall and the drive's tones) that much louder at the same recording gain:
    the same clip, recorded in a louder hall.
    """
    if machine_id not in RAILS:
        raise ValueError(f"unknown machine ID {machine_id!r}; choose one of {', '.join(RAILS)}")
    if anomaly is not None and anomaly not in ANOMALIES:
        raise ValueError(f"unknown anomaly {anomaly!r}; use None or one of {', '.join(ANOMALIES)}")
    rail, n, sr = RAILS[machine_id], round(duration_s * sample_rate), sample_rate
    mech, back, fault = _streams(seed)
    severity = _severity(rail, fault)
    reference = None
    if anomaly is not None:  # the normal twin's machine, rendered from the same draws, sets the level
        twin = copy.deepcopy(mech)
        reference = _machine(rail, _motion(rail, twin, n, sr, 0.0), twin, sr)
        # every fault changes its own process and loads the drive
        changed = _loaded(FAULTS[anomaly].process(rail, severity, fault), severity, fault)
    else:
        changed = rail
    slack = severity if anomaly == "loose_belt" else 0.0  # belt play: irregular, slipping strokes
    motion = _motion(changed, mech, n, sr, slack)
    machine = _machine(changed, motion, mech, sr)
    gain = 10 ** (mech.uniform(*rail.snr_db) / 20)
    machine *= gain / np.sqrt(np.mean((machine if reference is None else reference) ** 2))
    if anomaly is not None:
        extra = FAULTS[anomaly].transients(changed, motion, fault, sr)
        rms = max(np.sqrt(np.mean(extra ** 2)), 1e-12)  # zero when, say, no damaged spot was passed
        machine += extra * gain * severity * 10 ** (FAULTS[anomaly].level_db / 20) / rms
    background = _background(changed, back, n, sr)  # with the drive's tones as the fault left them
    # The recording chain's gain is set by the normal sound: a fault that adds energy makes the clip louder,
    # by at most MAX_RISE_DB x severity cubed (the machine's sound turned down to that).
    normal = background + (machine if reference is None else reference * gain / np.sqrt(np.mean(reference ** 2)))
    power = np.mean(normal ** 2)
    if anomaly is not None:
        machine *= _cap_gain(background, machine, power * 10 ** (MAX_RISE_DB * severity ** 3 / 10))
    background *= 10 ** (hall_db / 20)  # a louder hall, at the gain the usual hall's normal sound set
    y = (background + machine) * 10 ** ((rail.level_dbfs + back.normal(0, LEVEL_SD_DB)) / 20) / np.sqrt(power)
    if not np.all(np.isfinite(y)):  # np.clip keeps NaN, and a WAV file would hold it as full scale
        raise RuntimeError(f"ID {machine_id} {anomaly or 'normal'} clip of seed {seed}: samples are not finite")
    return np.clip(y, -1, 1).astype(np.float32)


def _cap_gain(background: np.ndarray, machine: np.ndarray, limit: float) -> float:
    """The gain (at most 1) that brings the power of ``background + gain * machine`` down to ``limit``;
    where no gain can (the two partly cancel, and even the quietest mix is louder), the quietest's."""
    a, b = np.mean(machine ** 2), 2 * np.mean(background * machine)
    c = np.mean(background ** 2) - limit
    if a + b + c <= 0 or a == 0:  # already within the limit, or nothing to turn down
        return 1.0
    quietest = float(np.clip(-b / (2 * a), 0.0, 1.0))  # the gain of the quietest mix, within 0..1
    if b * b < 4 * a * c:  # the power's minimum over the gain lies above the limit
        return quietest
    reached = float((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a))
    return reached if reached <= 1 else quietest  # beyond 1: only a louder machine would reach it


class ClipPlan(NamedTuple):
    """One file of the dataset and everything needed to render it."""

    path: Path
    machine_id: str
    anomaly: str | None
    seed: int
    labelled_name: str | None = None  # eval test clips are written unlabelled; their labelled name


def plan(root: Path, synth: SynthConfig, seed: int = 0) -> list[ClipPlan]:
    """Every clip of the dataset under ``root``, seeded from (seed, set, ID, split/label, index).

    As in the real release, the eval test clips are unlabelled (``id_01_00000000.wav``), in an
    order shuffled per ID; :func:`ground_truth_lines` gives their labels.
    """
    sets: list[list[ClipPlan]] = [[], []]
    for s, (folder, counts) in enumerate(zip(RELEASE_SETS, (synth.dev, synth.eval))):
        groups = (("train", "normal", counts.train), ("test", "normal", counts.test_normal),
                  ("test", "anomaly", counts.test_anomaly))
        for g, (split, label, per_id) in enumerate(groups):
            for mid, count in zip(counts.ids, per_id):
                where = Path(root) / folder / MACHINE / split
                sets[s] += [_planned(where / f"{label}_id_{mid}_{i:08d}.wav", mid, label == "anomaly",
                                     np.random.SeedSequence(seed, spawn_key=(s, int(mid), g, i)))
                            for i in range(count)]
    dev, ev = sets
    return [*dev, *[c for c in ev if c.path.parent.name == "train"],
            *_unlabelled([c for c in ev if c.path.parent.name == "test"], seed)]


def _unlabelled(clips: list[ClipPlan], seed: int) -> list[ClipPlan]:
    """The eval test clips renamed ``id_NN_<shuffled index>.wav``, keeping their labelled names."""
    out = []
    for mid in sorted({c.machine_id for c in clips}):
        mine = [c for c in clips if c.machine_id == mid]
        order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, int(mid)))).permutation(len(mine))
        for i, k in enumerate(order):
            c = mine[k]
            out.append(c._replace(path=c.path.with_name(f"id_{mid}_{i:08d}.wav"), labelled_name=c.path.name))
    return out


def _planned(path: Path, machine_id: str, anomalous: bool, key: np.random.SeedSequence) -> ClipPlan:
    """A clip's seed and, if anomalous, its fault type drawn from the ID's fault mix."""
    clip_seed, pick = (int(x) for x in key.generate_state(2))
    fault = np.random.default_rng(pick).choice(len(ANOMALIES), p=RAILS[machine_id].faults)
    return ClipPlan(path, machine_id, ANOMALIES[fault] if anomalous else None, clip_seed)


def ground_truth_lines(clips: list[ClipPlan]) -> list[str]:
    """The ``eval_data_list.csv`` lines of the unlabelled clips: the machine type, then ``file,labelled,label``."""
    rows = [f"{c.path.name},{c.labelled_name},{int(c.anomaly is not None)}" for c in clips if c.labelled_name]
    return [MACHINE, *rows] if rows else []


def _write(clip: ClipPlan, duration_s: float, hall_db: float = 0.0) -> None:
    """Render ``clip`` at the release's 16 kHz and write it as 16-bit PCM WAV (via a temporary
    file, then renamed)."""
    y = render_clip(clip.machine_id, clip.anomaly, clip.seed, duration_s, hall_db=hall_db)
    with written_whole(clip.path) as part:
        sf.write(part, y, 16000, subtype="PCM_16", format="WAV")


def _marker(synth: SynthConfig, seed: int, hall_db: float = 0.0) -> dict:
    # a louder hall is recorded only where there is one: the usual hall's marker stays as it was
    hall = {"hall_db": float(hall_db)} if hall_db else {}
    return json.loads(json.dumps({"version": VERSION, "seed": seed, "synth": asdict(synth), **hall}))


def read_marker(folder: Path) -> dict | None:
    """The generator's record (version, seed, sizes) of the synthetic data at ``folder`` (a root
    written by :func:`generate`, or its ``dev_data``/``eval_data``, also where copied apart); None
    for any other data, a ``.complete`` file of another program's included."""
    folder = Path(folder)
    for candidate in (folder, folder.parent) if folder.name in RELEASE_SETS else (folder,):
        try:
            record = json.loads((candidate / MARKER).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and {"version", "seed", "synth"} <= record.keys():
            return record
    return None


def linked_stand_in(root: Path) -> tuple[dict, Path] | None:
    """The generator's record and the root of the synthetic data that the clips under ``root`` link
    into (``asd arrange`` of stand-in clips links them), judged by the first linked clip; None where
    no clip links into it."""
    link = next((p for p in Path(root).rglob("*.wav") if p.is_symlink()), None)
    return None if link is None else stand_in_above(link.resolve().parent)


def stand_in_above(folder: Path) -> tuple[dict, Path] | None:
    """The generator's record and the root of the synthetic data that ``folder`` lies in (itself or
    a folder above it); None for any other folder."""
    for above in (Path(folder), *Path(folder).parents):
        if made := read_marker(above):
            return made, above
    return None


def planned(clips: Sequence[Clip], record: dict) -> list[ClipPlan]:
    """The generator's plan of each of ``clips`` (its fault and seed: :func:`render_clip` renders
    it, or with ``anomaly=None`` its normal twin), from the synthetic data that ``record``
    (:func:`read_marker`) describes.

    Raises DataError where another generator version made the data, or a clip is not one of it.
    """
    if record.get("version") != VERSION:
        raise DataError(f"the stand-in was made by generator version {record.get('version')}, this asd "
                        f"renders version {VERSION}: generate it again to know its faults")
    key = lambda path: Path(path).parts[-4:]  # noqa: E731  (dev_data|eval_data, machine, split, file)
    plans = {key(c.path): c for c in plan(Path(), SynthConfig.from_dict(record["synth"]), record["seed"])}
    out = []
    for clip in clips:
        if (p := plans.get(key(clip.path))) is None:
            raise DataError(f"{clip.path} is not a clip of the stand-in that the record describes")
        out.append(p)
    return out


def faults(clips: Sequence[Clip], record: dict) -> list[tuple[str, float] | None]:
    """The fault and its severity (0 none .. 1) of each of ``clips``, or None for a normal clip
    (:func:`planned`): the release's own file names say only normal or anomaly, the stand-in
    knows which fault."""
    return [None if p.anomaly is None else (p.anomaly, fault_severity(p.machine_id, p.seed))
            for p in planned(clips, record)]


def fault_groups(found: Sequence[tuple[str, float] | None], bands: int = 3) -> dict[str, list[str | None]]:
    """Each clip's group ``"by fault type"`` and ``"by severity"`` (one of ``bands`` equal bands of
    0..1, named like ``"severity 0.00-0.33"``), None for normal clips; ``found`` is :func:`faults`."""
    if bands < 1:
        raise ValueError(f"bands must be >= 1, got {bands}")
    edges = np.linspace(0.0, 1.0, bands + 1)
    band = lambda s: int(np.digitize(s, edges[1:-1]))  # noqa: E731
    return {"by fault type": [f and f[0] for f in found],
            "by severity": [f and f"severity {edges[band(f[1])]:.2f}-{edges[band(f[1]) + 1]:.2f}" for f in found]}


def dev_only(synth: SynthConfig, ids: Sequence[str], max_train: int | None = None) -> SynthConfig:
    """``synth`` with the development set's ``ids`` only, each with at most ``max_train`` training
    clips, and no eval set: the same clips, fewer of them to write (each clip is seeded by its set,
    ID, split, label and index, never by the counts)."""
    dev = synth.dev
    unknown = [mid for mid in ids if mid not in dev.ids]
    if unknown or not ids:
        raise ValueError(f"no ID {' or '.join(unknown) or 'given'}: the development set has {', '.join(dev.ids)}")
    if max_train is not None and max_train < 0:
        raise ValueError(f"max_train must be >= 0, got {max_train}")
    at = [dev.ids.index(mid) for mid in ids]
    cap = max(dev.train) if max_train is None else max_train
    counts = SplitCounts(tuple(ids), tuple(min(dev.train[i], cap) for i in at), tuple(dev.test_normal[i] for i in at),
                         tuple(dev.test_anomaly[i] for i in at))
    return replace(synth, dev=counts, eval=SplitCounts((), (), (), ()))


def hall_note(hall_db: float | None) -> str:
    """What a description of the stand-in adds for its hall: ``", hall +6 dB"``, or nothing for the
    usual hall."""
    return f", hall {hall_db:+g} dB" if hall_db else ""


def made_by(record: dict) -> str:
    """A stand-in's provenance from its generator record (:func:`read_marker`), for data labels:
    ``"generator v3, seed 0, hall +6 dB"``."""
    return f"generator v{record['version']}, seed {record['seed']}{hall_note(record.get('hall_db'))}"


def _made(record: dict, version: bool = False) -> str:
    """A generator record (:func:`read_marker`) in words: its seed, size, hall (and version)."""
    db = record.get("hall_db")
    hall = f"a hall {abs(db):g} dB {'louder' if db > 0 else 'quieter'}" if db else "the usual hall"
    generator = f", generator v{record.get('version')}" if version else ""
    return f"seed {record['seed']} ({sum(record['synth']['dev']['train'])} training clips in dev_data, {hall}{generator})"


def _is_complete(root: Path, synth: SynthConfig, seed: int, hall_db: float) -> bool:
    try:
        return json.loads((root / MARKER).read_text()) == _marker(synth, seed, hall_db)
    except (OSError, ValueError):
        return False


def generate(root: Path, synth: SynthConfig, seed: int = 0, progress: bool = True,
             workers: int | None = None, hall_db: float = 0.0) -> Path:
    """Write the synthetic dataset (DCASE layout) under ``root`` unless it is already there.

    ``root/dev_data`` and ``root/eval_data`` as in the release, and the eval test set's labels in
    ``root/eval_data_list.csv`` (beside the eval root, where :func:`asd.data.find_ground_truth` looks).

    ``hall_db`` renders every clip in a hall that much louder (:func:`render_clip`): the same
    clips, machines and faults, with only the background raised.

    ``root/.complete`` (written last, then copied into each set) records the config, seed and hall;
    with a matching marker this returns at once, with another one the old clips are removed first.
    ``workers`` processes render the clips (default: one per CPU). Processes writing the same
    ``root`` at once take turns (:func:`lock_path`): the second finds the first's data complete.
    Raises DataError where ``root`` holds slider data this generator did not write (a real
    release is never overwritten).
    """
    root = Path(root)
    if not abs(hall_db) <= MAX_HALL_DB:  # NaN too
        raise ValueError(f"the hall can be at most {MAX_HALL_DB:g} dB louder or quieter, got {hall_db:g} dB")
    if _is_complete(root, synth, seed, hall_db) and _sets_marked(root):
        return root
    with exclusive(lock_path(root), f"another process is writing {root}: waiting for it"):
        return _generate(root, synth, seed, progress, workers, hall_db)


def unfinished(folder: Path) -> Path | None:
    """The stand-in that ``folder`` is (or is a set of: ``dev_data/``, ``eval_data/``) if
    :func:`generate` started writing it and never finished (interrupted), else None."""
    folder = Path(folder)
    return next((root for root in (folder, folder.parent) if (root / STARTED).exists()), None)


def lock_path(root: Path) -> Path:
    """The lock :func:`generate` holds while it writes ``root``: under ``home()``, not in ``root``,
    which may be a folder of real data the generator refuses to touch."""
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return home() / "locks" / f"synth-{key}.lock"


def _generate(root: Path, synth: SynthConfig, seed: int, progress: bool, workers: int | None,
              hall_db: float) -> Path:
    """:func:`generate`'s work, under its lock: another process may have finished it meanwhile."""
    if _is_complete(root, synth, seed, hall_db):
        _mark_sets(root)  # a stand-in written before the sets held the record
        return root
    ours = (root / MARKER).exists() or (root / STARTED).exists()
    written = (*(root / name / MACHINE for name in RELEASE_SETS), root / GROUND_TRUTH)
    foreign = [p for p in written if p.exists()]
    if foreign and not ours:
        raise DataError(f"{root} already holds data the generator did not write ({foreign[0]}): "
                        "choose an empty folder for the synthetic stand-in")
    if ours:
        if old := read_marker(root):  # a complete stand-in of another seed, size, hall or version: say so
            new = _marker(synth, seed, hall_db)
            versions = old.get("version") != new["version"]
            warnings.warn(f"{root} holds the stand-in of {_made(old, versions)}: writing that of "
                          f"{_made(new, versions)} in its place", stacklevel=3)
        (root / MARKER).unlink(missing_ok=True)
        for name in RELEASE_SETS:
            (root / name / MARKER).unlink(missing_ok=True)
            shutil.rmtree(root / name / MACHINE, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / STARTED).touch()
    clips = plan(root, synth, seed)
    for folder in {clip.path.parent for clip in clips}:
        folder.mkdir(parents=True, exist_ok=True)
    write = partial(_write, duration_s=synth.duration_s, hall_db=hall_db)
    bar = partial(tqdm, total=len(clips), disable=not progress, desc="synthetic slider clips")
    if workers == 1:
        for _ in bar(map(write, clips)):
            pass
    else:  # Ctrl-C reaches the workers too: they ignore it, and leaving the block terminates them
        with multiprocessing.Pool(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
            for _ in bar(pool.imap(write, clips, chunksize=8)):
                pass
    atomic_write_bytes(root / GROUND_TRUTH, ("\n".join(ground_truth_lines(clips)) + "\n").encode())
    atomic_write_json(root / MARKER, _marker(synth, seed, hall_db))
    (root / STARTED).unlink()
    _mark_sets(root)
    return root


def _sets_marked(root: Path) -> bool:
    """Whether ``root``'s ``dev_data/`` and ``eval_data/`` hold its record (:func:`_mark_sets`)."""
    record = (root / MARKER).read_bytes()
    return all(not (root / name).is_dir() or _read_bytes(root / name / MARKER) == record for name in RELEASE_SETS)


def _mark_sets(root: Path) -> None:
    """The root's record copied into its ``dev_data/`` and ``eval_data/``: a set copied apart
    (``cp -r eval_data``) stays known as synthetic. A stand-in on read-only media goes without."""
    record = (root / MARKER).read_bytes()
    for name in RELEASE_SETS:
        if (root / name).is_dir() and _read_bytes(root / name / MARKER) != record:
            try:
                atomic_write_bytes(root / name / MARKER, record)
            except OSError:
                return


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def ensure(cfg: Config, progress: bool = True, hall_db: float = 0.0) -> Path:
    """Root of the synthetic data of ``cfg`` (in a hall ``hall_db`` louder), generated if needed:
    ``home() / f"synth-{cfg.profile}-seed{cfg.seed}"``, with ``-hall+6dB`` (say) added for a louder hall."""
    hall = f"-hall{hall_db:+g}dB" if hall_db else ""
    return generate(home() / f"synth-{cfg.profile}-seed{cfg.seed}{hall}", cfg.synth, cfg.seed, progress,
                    hall_db=hall_db)
