"""asd.features: log-mel against librosa by hand, the torch path, stacking, FrameSet, the standardiser, the cache."""
from __future__ import annotations

import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

import asd.features
from asd.config import FeatureConfig
from asd.data import Clip, DataError, list_clips, load_wav
from asd.features import (FrameSet, Standardiser, clip_means, extract, gather_vectors, logmel, logmel_torch, mel_basis,
                          stack)

SR = 16000
CFG = FeatureConfig()
# logmel_torch (torch.stft, float32) may differ from librosa (numpy FFT) by rounding only; measured
# differences are ~5e-5 dB, so 1e-2 dB leaves room for other FFT back ends while still catching any
# difference in window, padding, centring, mel basis or log formula (those move values by >0.1 dB).
TORCH_TOL_DB = 1e-2


def tone_noise(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def librosa_by_hand(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The DCASE 2020 baseline's feature from librosa's building blocks, in float64."""
    spec = np.abs(librosa.stft(y.astype(np.float64), n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                               window="hann", center=True, pad_mode=cfg.pad_mode)) ** cfg.power
    mel = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels) @ spec
    return (20.0 / cfg.power * np.log10(mel + sys.float_info.epsilon)).T


# --- log-mel -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
@pytest.mark.parametrize("n_samples", [16000, 8000, 2048, 16511, 16512])
def test_logmel_matches_librosa_by_hand(n_samples, pad_mode):
    cfg = replace(CFG, pad_mode=pad_mode)
    y = tone_noise(2.0)[:n_samples]
    got = logmel(y, cfg)
    assert got.dtype == np.float32
    assert got.shape == (1 + n_samples // 512, 128)
    np.testing.assert_allclose(got, librosa_by_hand(y, cfg), atol=1e-3, rtol=0)


def test_pad_mode_changes_only_the_edge_frames():
    """Reflection (the report's librosa) and zeros (librosa >= 0.9) differ in the first and last frame only."""
    assert CFG.pad_mode == "reflect"
    y = tone_noise(1.0)
    reflect, zeros = logmel(y, CFG), logmel(y, replace(CFG, pad_mode="constant"))
    gap = np.abs(reflect - zeros).max(axis=1)
    assert gap[0] > 1.0 and gap[-1] > 1.0  # dB: zero padding halves the edge frames' energy
    assert gap[2:-2].max() < 1e-4


def test_logmel_other_config_matches_librosa_by_hand():
    cfg = FeatureConfig(n_mels=64, n_fft=512, hop_length=256)
    y = tone_noise(0.5)
    got = logmel(y, cfg)
    assert got.shape == (1 + len(y) // 256, 64)
    np.testing.assert_allclose(got, librosa_by_hand(y, cfg), atol=1e-3, rtol=0)


def test_logmel_silence_is_log_of_eps():
    # 10 * log10(0 + eps): the baseline's floor, about -156.5 dB
    got = logmel(np.zeros(4096, dtype=np.float32), CFG)
    np.testing.assert_allclose(got, 10 * math.log10(sys.float_info.epsilon), atol=1e-3)


def test_mel_basis_shape_and_values():
    basis = mel_basis(CFG)
    assert basis.shape == (128, 1024 // 2 + 1) and basis.dtype == np.float32
    np.testing.assert_allclose(basis, librosa.filters.mel(sr=SR, n_fft=1024, n_mels=128), rtol=1e-6)
    assert mel_basis(FeatureConfig(n_mels=64, n_fft=512)).shape == (64, 257)


def test_logmel_torch_matches_logmel_tone_noise():
    basis = torch.from_numpy(mel_basis(CFG))
    ys = np.stack([tone_noise(1.0, seed=0), tone_noise(1.0, seed=1) * 0.1])
    got = logmel_torch(torch.from_numpy(ys), CFG, basis)
    assert got.shape == (2, 1 + 16000 // 512, 128)
    for y, g in zip(ys, got.numpy()):
        assert np.abs(g - logmel(y, CFG)).max() < TORCH_TOL_DB


def test_logmel_torch_matches_logmel_real_clip(real_dir):
    path = sorted(real_dir.glob("*.wav"))[0]
    y = load_wav(path)
    basis = torch.from_numpy(mel_basis(CFG))
    got = logmel_torch(torch.from_numpy(y)[None], CFG, basis)[0].numpy()
    want = logmel(y, CFG)
    assert got.shape == want.shape == (1 + len(y) // 512, 128)
    assert np.abs(got - want).max() < TORCH_TOL_DB


# --- stacking and FrameSet ---------------------------------------------------------------------


def test_stack_is_frame_major():
    frames = np.random.default_rng(0).standard_normal((9, 3)).astype(np.float32)
    vectors = stack(frames, 5)
    assert vectors.shape == (9 - 4, 15)
    for t in range(len(vectors)):
        want = np.concatenate([frames[t], frames[t + 1], frames[t + 2], frames[t + 3], frames[t + 4]])
        np.testing.assert_array_equal(vectors[t], want)


def test_stack_edge_cases():
    frames = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(stack(frames, 5), frames.reshape(1, -1))  # exactly one vector
    np.testing.assert_array_equal(stack(frames, 1), frames)
    with pytest.raises(ValueError, match="4 frames"):
        stack(frames[:4], 5)


def _frameset(lengths: list[int], n_mels: int = 4, seed: int = 0) -> FrameSet:
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((sum(lengths), n_mels)).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    clips = [Clip(Path(f"{'normal' if i % 2 == 0 else 'anomaly'}_id_0{i % 3}_{i:08d}.wav"), "test",
                  i % 2, f"0{i % 3}", i) for i in range(len(lengths))]
    return FrameSet(frames, offsets, clips)


def test_frameset_vectors_match_stack_per_clip():
    lengths = [7, 5, 12, 9]
    fs = _frameset(lengths)
    starts, clip_of = fs.vector_starts(5)
    assert len(starts) == len(clip_of) == sum(n - 4 for n in lengths)
    per_clip = [fs.frames[fs.offsets[i]: fs.offsets[i + 1]] for i in range(len(fs))]
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(starts[clip_of == i], fs.offsets[i] + np.arange(n - 4))
    np.testing.assert_array_equal(clip_of, np.repeat(np.arange(len(lengths)), [n - 4 for n in lengths]))
    np.testing.assert_array_equal(fs.vectors(5), np.concatenate([stack(f, 5) for f in per_clip]))
    # another context length
    np.testing.assert_array_equal(fs.vectors(3), np.concatenate([stack(f, 3) for f in per_clip]))


def test_frameset_subset():
    lengths = [7, 5, 12, 9]
    fs = _frameset(lengths)
    sub = fs.subset([2, 0])
    assert len(sub) == 2 and sub.clips == [fs.clips[2], fs.clips[0]]
    np.testing.assert_array_equal(sub.offsets, [0, 12, 19])
    np.testing.assert_array_equal(sub.frames, np.concatenate([fs.frames[12:24], fs.frames[0:7]]))
    np.testing.assert_array_equal(sub.y_true, [fs.clips[2].label, fs.clips[0].label])
    np.testing.assert_array_equal(sub.clip_ids, ["02", "00"])
    vec = fs.vectors(5)
    _, clip_of = fs.vector_starts(5)
    np.testing.assert_array_equal(sub.vectors(5), np.concatenate([vec[clip_of == 2], vec[clip_of == 0]]))
    empty = fs.subset([])
    assert len(empty) == 0 and empty.frames.shape == (0, 4)


# --- Standardiser ------------------------------------------------------------------------------


def test_standardiser_uses_training_statistics():
    rng = np.random.default_rng(0)
    scale, shift = rng.uniform(1, 10, 8), rng.uniform(-80, -20, 8)
    train = _frameset([40, 60, 50], n_mels=8, seed=1)
    train = train.with_frames((train.frames * scale + shift).astype(np.float32))
    test = _frameset([30, 30], n_mels=8, seed=2)
    test = test.with_frames((test.frames * 2 * scale + shift + 3 * scale).astype(np.float32))

    std = Standardiser.fit(train.frames)
    tr = std.transform(train)
    np.testing.assert_allclose(tr.frames.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(tr.frames.std(axis=0), 1, atol=1e-4)
    assert tr.frames.dtype == np.float32
    np.testing.assert_array_equal(tr.offsets, train.offsets)
    assert tr.clips == train.clips

    te = std.transform(test)
    train64 = train.frames.astype(np.float64)
    want = (test.frames - train64.mean(axis=0)) / train64.std(axis=0)
    np.testing.assert_allclose(te.frames, want, rtol=1e-5, atol=1e-4)
    # not standardised with its own statistics: the shift and doubled scale remain visible
    assert np.all(te.frames.mean(axis=0) > 2)
    assert np.all(te.frames.std(axis=0) > 1.5)
    np.testing.assert_allclose(std.inverse(te).frames, test.frames, rtol=1e-5, atol=1e-3)  # back in dB


def test_standardiser_constant_bin_stays_finite():
    frames = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    frames[:, 1] = -156.5
    std = Standardiser.fit(frames)
    out = std.transform(_frameset([20], n_mels=3).with_frames(frames))
    assert np.all(np.isfinite(out.frames))
    np.testing.assert_allclose(out.frames[:, 1], 0, atol=1e-3)


# --- extract and its cache ---------------------------------------------------------------------


def _write(path: Path, y: np.ndarray) -> None:
    sf.write(path, y, SR, subtype="PCM_16")


def test_extract_matches_logmel_per_clip(make_dataset, tmp_path):
    root = make_dataset(tmp_path / "data", ids=("00",), n_train=3, seconds=0.5)
    clips = list_clips(root, "slider", "train")
    fs = extract(clips, replace(CFG, backend="librosa"), cache_dir=None, progress=False)
    assert fs.clips == clips and fs.frames.dtype == np.float32
    for i, c in enumerate(clips):
        np.testing.assert_array_equal(fs.frames[fs.offsets[i]: fs.offsets[i + 1]], logmel(load_wav(c.path), CFG))


def test_extract_cache_hit_skips_computation(make_dataset, tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", ids=("00",), n_train=3, seconds=0.5)
    clips = list_clips(root, "slider", "train")
    cache = tmp_path / "cache"
    cfg = replace(CFG, backend="librosa")
    first = extract(clips, cfg, cache, progress=False)
    files = sorted(os.listdir(cache))
    assert len(files) == 1 and files[0].startswith("logmel-") and files[0].endswith(".npz")  # no temp files

    def boom(*args, **kwargs):
        raise AssertionError("logmel called although the cache holds these features")

    monkeypatch.setattr(asd.features, "logmel", boom)
    second = extract(clips, cfg, cache, progress=False)
    np.testing.assert_array_equal(second.frames, first.frames)
    np.testing.assert_array_equal(second.offsets, first.offsets)
    assert second.clips == clips
    with pytest.raises(AssertionError, match="logmel called"):  # the patch is live: no cache -> computed
        extract(clips, cfg, tmp_path / "other_cache", progress=False)


def test_extract_cache_keyed_on_feature_config(make_dataset, tmp_path):
    root = make_dataset(tmp_path / "data", ids=("00",), n_train=2, seconds=0.5)
    clips = list_clips(root, "slider", "train")
    cache = tmp_path / "cache"
    a = extract(clips, CFG, cache, progress=False)
    b = extract(clips, replace(CFG, n_mels=64), cache, progress=False)
    assert a.frames.shape[1] == 128 and b.frames.shape[1] == 64
    assert len(list(cache.iterdir())) == 2


def test_extract_cache_outlives_a_plot_edit_not_a_feature_code_edit(make_dataset, tmp_path, monkeypatch):
    import shutil

    root = make_dataset(tmp_path / "data", ids=("00",), n_train=2, seconds=0.5)
    clips = list_clips(root, "slider", "train")
    copy = tmp_path / "asd"
    shutil.copytree(Path(asd.features.__file__).parent, copy)
    monkeypatch.setattr(asd.features, "PACKAGE", copy)
    cache = tmp_path / "cache"
    extract(clips, CFG, cache, progress=False)
    (copy / "plots.py").write_text((copy / "plots.py").read_text() + "\n# a label edit\n")
    extract(clips, CFG, cache, progress=False)
    assert len(list(cache.iterdir())) == 1
    for name in asd.features.FEATURE_MODULES:  # e.g. a fix to the mel filters or to reading WAVs
        (copy / f"{name}.py").write_text((copy / f"{name}.py").read_text() + "\n# a fix\n")
        extract(clips, CFG, cache, progress=False)
    assert len(list(cache.iterdir())) == 1 + len(asd.features.FEATURE_MODULES)


def test_torch_feature_cache_keyed_on_device_kind(make_dataset, tmp_path):
    root = make_dataset(tmp_path / "data", ids=("00",), n_train=2, seconds=0.5)
    clips = list_clips(root, "slider", "train")
    key = asd.features.cache_key
    torch_cfg, librosa_cfg = replace(CFG, backend="torch"), replace(CFG, backend="librosa")
    assert key(clips, torch_cfg, torch.device("cpu")) == key(clips, torch_cfg)
    assert key(clips, torch_cfg, torch.device("cpu")) != key(clips, torch_cfg, torch.device("cuda"))
    assert key(clips, librosa_cfg, torch.device("cpu")) == key(clips, librosa_cfg, torch.device("cuda"))


def test_extract_cache_invalidated_by_rewritten_clip(make_dataset, tmp_path):
    root = make_dataset(tmp_path / "data", ids=("00",), n_train=3, seconds=0.5)
    clips = list_clips(root, "slider", "train")
    cache = tmp_path / "cache"
    before = extract(clips, CFG, cache, progress=False)

    # same length (same file size), different content, later modification time
    target = clips[1].path
    st = target.stat()
    tone = 0.1 * np.sin(2 * np.pi * 3000 * np.arange(int(0.5 * SR)) / SR)
    _write(target, tone.astype(np.float32))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert target.stat().st_size == st.st_size
    after = extract(clips, CFG, cache, progress=False)
    assert len(list(cache.iterdir())) == 2
    i = 1
    np.testing.assert_allclose(after.frames[after.offsets[i]: after.offsets[i + 1]],
                               extract([clips[i]], CFG, None, progress=False).frames, atol=1e-4)
    np.testing.assert_array_equal(after.frames[: after.offsets[1]], before.frames[: before.offsets[1]])

    # a different length changes the size: invalidated even without touching the time stamp
    _write(target, tone_noise(0.75))
    again = extract(clips, CFG, cache, progress=False)
    assert again.frames.shape[0] == before.frames.shape[0] + (1 + 12000 // 512) - (1 + 8000 // 512)
    assert len(list(cache.iterdir())) == 3


@pytest.mark.parametrize("backend", ["librosa", "torch"])
@pytest.mark.parametrize("n", [100, 2047])  # shorter than the STFT's padding; 1 + 2047 // 512 = 4 frames
def test_extract_clip_too_short_names_the_file(tmp_path, backend, n):
    folder = tmp_path / "slider" / "train"
    folder.mkdir(parents=True)
    _write(folder / "normal_id_00_00000000.wav", tone_noise(0.5))
    _write(folder / "normal_id_00_00000001.wav", tone_noise(0.5)[:n])
    clips = list_clips(tmp_path, "slider", "train")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=f"normal_id_00_00000001.wav: {n} samples, need at least 2048"):
        extract(clips, replace(CFG, backend=backend), cache, progress=False)
    assert not cache.exists() or not any(cache.iterdir())  # nothing cached for a failed extraction
    # 2048 samples make exactly 5 frames: accepted
    _write(folder / "normal_id_00_00000001.wav", tone_noise(0.5)[:2048])
    fs = extract(clips, CFG, None, progress=False)
    assert np.diff(fs.offsets).tolist() == [1 + 8000 // 512, 5]


@pytest.mark.parametrize("backend", ["librosa", "torch"])
def test_extract_clip_shorter_than_one_window_names_the_file(tmp_path, backend):
    """With a short hop, 5 frames need fewer samples than one window: the window sets the minimum
    (torch.stft cannot reflect-pad a clip shorter than half a window, librosa warns)."""
    folder = tmp_path / "slider" / "train"
    folder.mkdir(parents=True)
    _write(folder / "normal_id_00_00000000.wav", tone_noise(0.5)[:1000])
    cfg = replace(CFG, backend=backend, hop_length=128)
    clips = list_clips(tmp_path, "slider", "train")
    with pytest.raises(DataError, match="normal_id_00_00000000.wav: 1000 samples, need at least 1024"):
        extract(clips, cfg, None, progress=False)
    _write(folder / "normal_id_00_00000000.wav", tone_noise(0.5)[:1024])
    assert np.diff(extract(clips, cfg, None, progress=False).offsets).tolist() == [1 + 1024 // 128]


def test_extract_corrupt_clip_names_the_file(tmp_path):
    folder = tmp_path / "slider" / "train"
    folder.mkdir(parents=True)
    (folder / "normal_id_00_00000000.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match="normal_id_00_00000000.wav"):
        extract(list_clips(tmp_path, "slider", "train"), CFG, None, progress=False)


def test_extract_no_clips():
    with pytest.raises(DataError):
        extract([], CFG, None, progress=False)


def test_extract_failed_cache_write_leaves_no_temp_file(make_dataset, tmp_path, monkeypatch):
    import asd.utils

    root = make_dataset(tmp_path / "data", ids=("00",), n_train=2, seconds=0.5)
    clips = list_clips(root, "slider", "train")
    cache = tmp_path / "cache"

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(asd.utils.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        extract(clips, CFG, cache, progress=False)
    assert list(cache.iterdir()) == []  # neither a partial cache file nor a temporary one


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
@pytest.mark.parametrize("seconds", [(0.5, 0.5, 0.5), (0.5, 0.75, 0.3)], ids=["equal", "mixed"])
def test_extract_torch_backend_matches_librosa(tmp_path, seconds, pad_mode):
    folder = tmp_path / "slider" / "train"
    folder.mkdir(parents=True)
    for i, s in enumerate(seconds):
        _write(folder / f"normal_id_00_{i:08d}.wav", tone_noise(s, seed=i))
    clips = list_clips(tmp_path, "slider", "train")
    cache = tmp_path / "cache"
    cfg = replace(CFG, pad_mode=pad_mode)
    ref = extract(clips, replace(cfg, backend="librosa"), cache, progress=False)
    got = extract(clips, replace(cfg, backend="torch"), cache, progress=False, device=torch.device("cpu"))
    np.testing.assert_array_equal(got.offsets, ref.offsets)
    np.testing.assert_array_equal(np.diff(got.offsets), [1 + int(s * SR) // 512 for s in seconds])
    assert got.frames.dtype == np.float32
    assert np.abs(got.frames - ref.frames).max() < TORCH_TOL_DB
    assert len(list(cache.iterdir())) == 2  # the backend is part of the cache key


def test_extract_torch_backend_short_clip_and_bad_backend(tmp_path):
    folder = tmp_path / "slider" / "train"
    folder.mkdir(parents=True)
    _write(folder / "normal_id_00_00000000.wav", tone_noise(0.5)[:1000])
    clips = list_clips(tmp_path, "slider", "train")
    with pytest.raises(DataError, match="normal_id_00_00000000.wav"):
        extract(clips, replace(CFG, backend="torch"), None, progress=False)
    with pytest.raises(ValueError, match="backend"):
        extract(clips, replace(CFG, backend="essentia"), None, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_logmel_torch_on_cuda_matches_logmel():
    y = tone_noise(1.0)
    basis = torch.from_numpy(mel_basis(CFG)).cuda()
    got = logmel_torch(torch.from_numpy(y)[None].cuda(), CFG, basis)[0].cpu().numpy()
    assert np.abs(got - logmel(y, CFG)).max() < TORCH_TOL_DB


def test_gather_vectors_reads_windows_of_frames_in_numpy_and_torch_alike():
    frames = np.random.default_rng(1).standard_normal((4, 12)).astype(np.float32).T  # (12, 4), not contiguous
    starts = np.array([7, 0, 3, 7])
    want = np.stack([frames[s : s + 5].reshape(-1) for s in starts])
    np.testing.assert_array_equal(gather_vectors(frames, starts, 5), want)
    got = gather_vectors(torch.from_numpy(frames), torch.from_numpy(starts), 5)
    np.testing.assert_array_equal(got.numpy(), want)
    assert gather_vectors(frames, starts[:0], 5).shape == (0, 20)
    assert gather_vectors(torch.from_numpy(frames[:3]), torch.zeros(0, dtype=torch.long), 5).shape == (0, 20)


def test_frames_are_stored_row_major_whatever_the_parts_layout():
    """A clip's log-mel is a transposed spectrogram (column-major); the frame set keeps its frames
    row-major, so that a stacked vector is a window of memory and a batch one row gather."""
    fs = _frameset([7, 9])
    parts = [np.asfortranarray(fs.frames[a:b]) for a, b in zip(fs.offsets, fs.offsets[1:])]
    rebuilt = FrameSet.from_parts(parts, fs.clips)
    assert rebuilt.frames.flags.c_contiguous and np.array_equal(rebuilt.frames, fs.frames)
    assert FrameSet(np.asfortranarray(fs.frames), fs.offsets, fs.clips).frames.flags.c_contiguous
    assert Standardiser.fit(fs.frames).transform(rebuilt).frames.flags.c_contiguous


def test_logmel_torch_honours_the_power_as_librosa_does():
    cfg = FeatureConfig(power=1.0)  # a magnitude spectrogram: every other test uses the default power 2
    y = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    got = logmel_torch(torch.from_numpy(y)[None], cfg, torch.from_numpy(mel_basis(cfg)))[0].numpy()
    assert np.abs(got - logmel(y, cfg)).max() < 1e-2


def test_a_clip_score_is_the_mean_over_its_own_vectors_whatever_its_length():
    np.testing.assert_allclose(clip_means(np.array([1.0, 1.0, 1.0, 5.0]), np.array([0, 0, 0, 1]), 2), [1.0, 5.0])
