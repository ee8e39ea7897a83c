"""asd.train: the clip-level split, the fast training loop against the reference loop, per-clip scores."""
from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from asd.config import Config, FitConfig, get_config
from asd.data import Clip, DataError
from asd.experiment import Prepared, prepare
from asd.features import FrameSet
from asd.models import build
from asd.bench import fit_plain
from asd.train import DeviceVectors, FlatAdam, cublaslt, fit, fit_steps, fit_together, score, split_clips

CPU = torch.device("cpu")
CFG = Config()
N_FRAMES = CFG.feature.n_frames


@pytest.fixture(scope="module")
def prep(make_dataset, tmp_path_factory) -> Prepared:
    """Standardised frames of a tiny two-ID dataset: 16 training clips of 1 s (28 vectors each)."""
    tmp = tmp_path_factory.mktemp("train_data")
    root = make_dataset(tmp / "data", ids=("00", "02"), n_train=8, n_test_normal=3, n_test_anomaly=3, seconds=1.0)
    return prepare(CFG, root, cache_dir=tmp / "cache", progress=False)


def n_vectors(fs: FrameSet) -> int:
    return int(fs.vector_counts(N_FRAMES).sum())


def _fit(name: str, prep: Prepared, fit_cfg: FitConfig, seed: int = 0, loop=fit):
    torch.manual_seed(seed)
    model = build(name, CFG, n_ids=len(prep.unique_ids))
    hist = loop(model, prep.train, fit_cfg, N_FRAMES, prep.id_index, CPU, seed=seed, progress=False)
    return model, hist


# --- split_clips -------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "split"), [(16, 0.1), (10, 0.5), (968, 0.1), (7, 0.3)])
def test_split_clips_disjoint_complete_deterministic(n, split):
    tr, val = split_clips(np.zeros(n), split, seed=3)
    assert len(np.intersect1d(tr, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, val])), np.arange(n))
    assert len(val) == round(n * split)
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(val) > 0)  # sorted
    tr2, val2 = split_clips(np.zeros(n), split, seed=3)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(val, val2)


def test_split_clips_depends_on_seed():
    one = np.zeros(100)
    assert any(not np.array_equal(split_clips(one, 0.2, 0)[1], split_clips(one, 0.2, s)[1]) for s in (1, 2, 3))


def test_split_clips_no_validation():
    tr, val = split_clips(np.zeros(5), 0.0, seed=0)
    np.testing.assert_array_equal(tr, np.arange(5))
    assert len(val) == 0


def test_split_clips_keeps_one_validation_clip_of_few_and_a_training_clip_always():
    tr, val = split_clips(np.zeros(3), 0.1, seed=0)
    assert len(val) == 1 and len(tr) == 2
    for n, split in ((1, 0.1), (2, 0.9)):
        tr, val = split_clips(np.zeros(n), split, seed=0)
        assert len(tr) == 1 and len(val) == n - 1


def test_split_clips_refuses_no_clips():
    with pytest.raises(DataError, match="no training clips"):
        split_clips(np.array([]), 0.1, seed=0)


def test_split_clips_by_group_holds_out_each_groups_share():
    groups = np.repeat(["00", "02", "04", "06"], [60, 60, 27, 1])  # the quick stand-in's counts, and a lone clip
    tr, val = split_clips(groups, 0.1, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, val])), np.arange(len(groups)))
    held = {g: int(np.sum(groups[val] == g)) for g in ("00", "02", "04", "06")}
    assert held == {"00": 6, "02": 6, "04": 3, "06": 0}  # round(10 %), at least 1, never a group's last clip
    assert split_clips(groups, 0.1, seed=0)[1].tolist() == val.tolist()
    assert split_clips(groups, 0.1, seed=1)[1].tolist() != val.tolist()
    tr, val = split_clips(np.array(["a", "a", "b", "b"]), 0.9, seed=0)
    assert len(val) == 2 and sorted("aabb"[i] for i in tr) == ["a", "b"]


# --- DeviceVectors ------------------------------------------------------------------------------


def test_device_vectors_batch_equals_frameset_vectors(prep):
    data = DeviceVectors.build(prep.train, N_FRAMES, prep.id_index, CPU)
    vectors = prep.train.vectors(N_FRAMES)
    assert len(data) == len(vectors) == n_vectors(prep.train)
    index = torch.tensor([0, 27, 28, len(data) - 1, 5])
    x, ids = data.batch(index)
    np.testing.assert_array_equal(x.numpy(), vectors[index.numpy()])
    _, clip_of = prep.train.vector_starts(N_FRAMES)
    want_ids = [prep.id_index[prep.train.clips[c].machine_id] for c in clip_of[index.numpy()]]
    assert ids.tolist() == want_ids


# --- fit ----------------------------------------------------------------------------------------


def test_fit_history_and_steps(prep):
    fit_cfg = FitConfig(epochs=3, batch_size=100, validation_split=0.1)
    model, hist = _fit("sequential", prep, fit_cfg)
    tr_idx, val_idx = split_clips(prep.train.clip_ids, 0.1, seed=0)  # as fit splits: per machine ID
    n_train = n_vectors(prep.train.subset(tr_idx))
    assert len(hist.train_loss) == len(hist.val_loss) == 3
    assert hist.steps == 3 * math.ceil(n_train / 100)
    assert hist.seconds > 0
    assert not model.training
    # the last validation loss is the mean loss over the held-out clips' vectors, by hand
    val = prep.train.subset(val_idx)
    with torch.no_grad():
        x = torch.from_numpy(val.vectors(N_FRAMES))
        want = model.loss(x, torch.zeros(len(x), dtype=torch.long)).mean().item()
    assert hist.val_loss[-1] == pytest.approx(want, rel=1e-5)


def test_fit_without_validation(prep):
    _, hist = _fit("sequential", prep, FitConfig(epochs=2, batch_size=256, validation_split=0.0))
    assert hist.val_loss == [] and len(hist.train_loss) == 2
    assert hist.steps == 2 * math.ceil(n_vectors(prep.train) / 256)


def test_fit_deterministic_and_loss_decreases(prep):
    fit_cfg = FitConfig(epochs=4, batch_size=128)
    # the dropout VAE draws from every source of randomness: init, shuffling, dropout masks, sampling
    m1, h1 = _fit("dropout", prep, fit_cfg, seed=1)
    m2, h2 = _fit("dropout", prep, fit_cfg, seed=1)
    assert h1.train_loss == h2.train_loss and h1.val_loss == h2.val_loss
    s1 = score(m1, prep.test, N_FRAMES, prep.id_index, CPU)
    s2 = score(m2, prep.test, N_FRAMES, prep.id_index, CPU)
    np.testing.assert_array_equal(s1, s2)
    assert h1.train_loss[-1] < h1.train_loss[0]
    _, h3 = _fit("dropout", prep, fit_cfg, seed=2)
    assert h3.train_loss != h1.train_loss


def test_fit_seed_alone_makes_training_reproducible(prep):
    fit_cfg = FitConfig(epochs=1, batch_size=128)
    torch.manual_seed(0)
    m1 = build("dropout", CFG)
    m2 = copy.deepcopy(m1)
    h1 = fit(m1, prep.train, fit_cfg, N_FRAMES, prep.id_index, CPU, seed=0, progress=False)
    h2 = fit(m2, prep.train, fit_cfg, N_FRAMES, prep.id_index, CPU, seed=0, progress=False)
    assert h1.train_loss == h2.train_loss


def test_fit_and_fit_plain_reach_similar_loss(prep):
    fit_cfg = FitConfig(epochs=10, batch_size=128)
    _, fast = _fit("sequential", prep, fit_cfg, loop=fit)
    _, plain = _fit("sequential", prep, fit_cfg, loop=fit_plain)
    assert fast.steps == plain.steps
    assert len(plain.train_loss) == len(plain.val_loss) == 10
    start = fast.train_loss[0]
    assert fast.train_loss[-1] < start and plain.train_loss[-1] < start
    assert abs(fast.train_loss[-1] - plain.train_loss[-1]) < 0.2 * fast.train_loss[-1]
    # also close relative to how far training moved the loss (a much stricter yardstick here)
    assert abs(fast.train_loss[-1] - plain.train_loss[-1]) < 0.2 * (start - fast.train_loss[-1])
    assert abs(fast.val_loss[-1] - plain.val_loss[-1]) < 0.2 * fast.val_loss[-1]


def test_fit_together_trains_each_network_as_alone(prep):
    """Interleaved epochs change nothing for networks that draw no random numbers while training."""
    cfgs = [FitConfig(epochs=3, batch_size=100), FitConfig(epochs=5, batch_size=64)]  # unequal lengths
    alone = [_fit("sequential", prep, c, seed=s) for s, c in enumerate(cfgs)]
    models = []
    for s in range(2):
        torch.manual_seed(s)
        models.append(build("sequential", CFG, n_ids=len(prep.unique_ids)))
    done = []
    together = fit_together([fit_steps(m, prep.train, c, N_FRAMES, prep.id_index, CPU, seed=s, progress=False)
                             for s, (m, c) in enumerate(zip(models, cfgs))], CPU, lambda i, h: done.append((i, h)))
    assert [i for i, _ in done] == [0, 1] and [h for _, h in done] == together  # each as it finishes
    for (model, hist), m, h in zip(alone, models, together):
        assert h.train_loss == hist.train_loss and h.val_loss == hist.val_loss and h.steps == hist.steps
        assert 0 < h.setup_seconds < h.seconds  # timed apart from the epochs
        for a, b in zip(model.state_dict().values(), m.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_fit_together_is_reproducible_with_sampling_networks(prep):
    def once():
        jobs = []
        for name in ("baseline", "dropout"):
            torch.manual_seed(0)
            model = build(name, CFG, n_ids=len(prep.unique_ids))
            jobs.append(fit_steps(model, prep.train, FitConfig(epochs=3, batch_size=128), N_FRAMES, prep.id_index,
                                  CPU, progress=False))
        return fit_together(jobs, CPU)

    first, second = once(), once()
    assert [h.train_loss for h in first] == [h.train_loss for h in second]
    assert all(h.train_loss[-1] < h.train_loss[0] for h in first)


@pytest.mark.parametrize("loop", [fit, fit_plain], ids=["fit", "fit_plain"])
def test_fit_survives_final_batch_of_one(prep, loop):
    batch = n_vectors(prep.train) - 1  # one full batch, then a batch of a single vector
    _, hist = _fit("sequential", prep, FitConfig(epochs=1, batch_size=batch, validation_split=0.0), loop=loop)
    assert hist.steps == 1 and np.isfinite(hist.train_loss[0])  # the lone vector is dropped


def test_both_loops_average_the_loss_over_the_vectors_they_trained_on(prep):
    frames = np.tile(prep.train.frames[:1], (N_FRAMES + 4, 1))  # 5 equal vectors: batches of 4, then 1
    equal = replace(prep, train=FrameSet.from_parts([frames], prep.train.clips[:1]))
    fit_cfg = FitConfig(epochs=1, batch_size=4, lr=0.0, validation_split=0.0)
    (_, fast), (_, plain) = (_fit("sequential", equal, fit_cfg, loop=loop) for loop in (fit, fit_plain))
    assert fast.steps == plain.steps == 1
    # lr 0: one batch's mean loss, whichever 4 vectors it drew; not a sum over 4 divided by 5
    assert plain.train_loss[0] == pytest.approx(fast.train_loss[0], rel=1e-5)


@pytest.mark.parametrize("loop", [fit, fit_plain], ids=["fit", "fit_plain"])
def test_fit_refuses_a_single_training_vector(prep, loop):
    one = FrameSet.from_parts([prep.train.frames[:N_FRAMES]], prep.train.clips[:1])  # 5 frames: 1 vector
    with pytest.raises(DataError, match=r"1 training vector\(s\); training needs at least 2: more or longer "
                                        r"training clips$"):  # no split to blame: none was held out
        _fit("sequential", replace(prep, train=one),
             FitConfig(epochs=1, batch_size=256, validation_split=0.0), loop=loop)
    two = FrameSet.from_parts([prep.train.frames[:N_FRAMES]] * 2, prep.train.clips[:2])
    with pytest.raises(DataError, match=r"\(1 validation clip\(s\) held out\).*a smaller validation_split"):
        _fit("sequential", replace(prep, train=two),
             FitConfig(epochs=1, batch_size=256, validation_split=0.5), loop=loop)


# --- score --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["batchnorm", "sequential"])
def test_score_is_mean_of_vector_scores(prep, name):
    model, _ = _fit(name, prep, FitConfig(epochs=1, batch_size=256))
    scores = score(model, prep.test, N_FRAMES, prep.id_index, CPU)
    assert scores.shape == (len(prep.test),) and np.all(np.isfinite(scores))

    _, clip_of = prep.test.vector_starts(N_FRAMES)
    x = torch.from_numpy(prep.test.vectors(N_FRAMES))
    model.eval()
    with torch.no_grad():
        per_vector = model.score(x, torch.zeros(len(x), dtype=torch.long)).double().numpy()
    want = np.array([per_vector[clip_of == i].mean() for i in range(len(prep.test))])
    np.testing.assert_allclose(scores, want, rtol=1e-5)
    # batches that cut across clip boundaries give the same answer
    np.testing.assert_allclose(score(model, prep.test, N_FRAMES, prep.id_index, CPU, batch_size=7), scores, rtol=1e-5)


# --- precision and CUDA-graph capture -----------------------------------------------------------


def test_bf16_autocast_trains_and_scores_close_to_fp32(prep):
    fit_cfg = FitConfig(epochs=6, batch_size=128)
    m32, h32 = _fit("sequential", prep, fit_cfg)
    torch.manual_seed(0)
    m16 = build("sequential", CFG)
    h16 = fit(m16, prep.train, fit_cfg, N_FRAMES, prep.id_index, CPU, progress=False, precision="bf16")
    assert all(p.dtype == torch.float32 for p in m16.parameters())  # weights stay fp32
    assert h16.train_loss[-1] < h16.train_loss[0]
    assert h16.train_loss != h32.train_loss  # bf16 arithmetic really ran
    assert abs(h16.train_loss[-1] - h32.train_loss[-1]) < 0.1 * h32.train_loss[-1]
    s32 = score(m32, prep.test, N_FRAMES, prep.id_index, CPU)
    s16 = score(m16, prep.test, N_FRAMES, prep.id_index, CPU, precision="bf16")
    assert np.corrcoef(s32, s16)[0, 1] > 0.95


def test_capture_needs_cuda(prep):
    with pytest.raises(ValueError, match="CUDA"):
        fit(build("sequential", CFG), prep.train, FitConfig(epochs=1, batch_size=64), N_FRAMES, prep.id_index,
            CPU, progress=False, capture=True)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@CUDA
@pytest.mark.parametrize("batch_size", [64, 100])  # 100: a final partial batch every epoch
@pytest.mark.parametrize("steps_per_graph", [32, 4])  # 4: 6 full batches of 64 = one 4-step graph + 2 single steps
def test_captured_training_matches_eager_on_cuda(prep, batch_size, steps_per_graph, monkeypatch):
    """The CUDA-graph epoch runs the same steps as the eager loop: same weights after a few epochs."""
    monkeypatch.setattr("asd.train.STEPS_PER_GRAPH", steps_per_graph)
    gpu = torch.device("cuda")
    fit_cfg = FitConfig(epochs=3, batch_size=batch_size)
    torch.manual_seed(0)
    eager = build("sequential", CFG)
    captured = copy.deepcopy(eager)
    h_eager = fit(eager, prep.train, fit_cfg, N_FRAMES, prep.id_index, gpu, progress=False, capture=False)
    h_graph = fit(captured, prep.train, fit_cfg, N_FRAMES, prep.id_index, gpu, progress=False, capture=True)
    assert h_graph.steps == h_eager.steps
    np.testing.assert_allclose(h_graph.train_loss, h_eager.train_loss, rtol=1e-4)
    np.testing.assert_allclose(h_graph.val_loss, h_eager.val_loss, rtol=1e-4)
    for (name, a), b in zip(eager.state_dict().items(), captured.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


@CUDA
def test_captured_vae_and_concurrent_run_on_cuda(make_dataset, tmp_path):
    """The sampling VAEs train under capture, and networks train at once, one stream each, to the
    result of training in series: each captured network draws from a generator of its own."""
    from asd.experiment import run

    root = make_dataset(tmp_path / "data", ids=("00", "02"), n_train=6, seconds=1.0)
    cfg = Config(profile="quick").with_epochs(3)
    serial = run(cfg, root, ["baseline", "dropout", "sequential"], device="cuda", progress=False, cache=False)
    both = run(cfg, root, ["baseline", "dropout", "sequential"], device="cuda", progress=False, cache=False,
               concurrent=True)
    for name in ("baseline", "dropout", "sequential"):
        h1, h2 = serial.models[name].histories["all"], both.models[name].histories["all"]
        assert h1.steps == h2.steps and np.isfinite(h2.train_loss).all()
        assert h2.train_loss[-1] < h2.train_loss[0]
        # cuBLAS may pick other kernels per stream: the sequential net's scores were 2.3e-4 apart on an H100
        np.testing.assert_allclose(both.models[name].scores, serial.models[name].scores, rtol=2e-3)


def test_flat_adam_updates_as_torch_adam():
    """FlatAdam (the parameters as views of one buffer, the optimiser over pieces of it) takes the
    steps PyTorch's fused Adam takes, and the model keeps working as a module afterwards."""
    torch.manual_seed(0)
    ref = build("sequential", CFG)
    flat_model = copy.deepcopy(ref)
    adam = torch.optim.Adam(ref.parameters(), lr=1e-2, fused=True)
    flat = FlatAdam(flat_model.parameters(), lr=1e-2, piece=1000, capturable=False)
    assert len(flat.pieces) > len(list(ref.parameters()))  # pieces cut across parameters
    x = torch.randn(64, CFG.feature.dim)
    for _ in range(5):
        for model, opt in ((ref, adam), (flat_model, flat)):
            opt.zero_grad(set_to_none=True)
            model.loss(x, None).mean().backward()
            opt.step()
    for (name, a), b in zip(ref.state_dict().items(), flat_model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(ref.net[0].weight, build("sequential", CFG).net[0].weight)  # it trained
    fresh = build("sequential", CFG).state_dict()
    flat_model.load_state_dict(fresh)  # the views take a loaded state, and the optimiser sees it
    torch.testing.assert_close(flat.pieces[0][:10], fresh["net.0.weight"].reshape(-1)[:10])


@CUDA
def test_cublaslt_is_set_for_training_and_restored_after_on_cuda():
    before = torch.backends.cuda.preferred_blas_library()
    with pytest.raises(RuntimeError, match="inside"):
        with cublaslt(torch.device("cuda")):
            assert torch.backends.cuda.preferred_blas_library() == torch._C._BlasBackend.Cublaslt
            raise RuntimeError("inside")
    assert torch.backends.cuda.preferred_blas_library() == before


def test_each_epoch_visits_the_vectors_in_a_new_random_order(monkeypatch):
    seen, batch = [], DeviceVectors.batch

    def recorded(self, index):
        seen.append(index.clone())
        return batch(self, index)

    monkeypatch.setattr(DeviceVectors, "batch", recorded)
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((20, 128)).astype(np.float32) for _ in range(2)]
    clips = [Clip(Path(f"normal_id_{mid}_00000000.wav"), "train", 0, mid, 0) for mid in ("00", "02")]
    fit(build("sequential", get_config("quick")), FrameSet.from_parts(parts, clips),
        FitConfig(epochs=2, batch_size=8, validation_split=0.0), 5, {"00": 0, "02": 1}, torch.device("cpu"),
        progress=False)
    epochs = [torch.cat(seen[:4]).tolist(), torch.cat(seen[4:]).tolist()]  # 32 vectors: 4 batches of 8 an epoch
    assert all(sorted(e) == list(range(32)) for e in epochs)
    assert epochs[0] != list(range(32)) and epochs[0] != epochs[1]
