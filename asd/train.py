"""Training and scoring.

The fast path keeps the standardised log-mel frames on the device, shuffles vector indices
there and gathers each batch of stacked vectors with one indexing operation: no Dataset, no
per-sample collation, one host synchronisation per epoch (two with a validation split). On
CUDA each epoch replays captured CUDA graphs, and :func:`fit_together` trains several
networks at once from one thread, each on its own CUDA stream. The textbook ``TensorDataset``
+ ``DataLoader`` loop that the benchmark compares against is :func:`asd.bench.fit_plain`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from asd.config import FitConfig
from asd.data import DataError
from asd.features import FrameSet, clip_means, gather_vectors


@dataclass
class History:
    """Mean training (and validation) loss per epoch, wall time and number of updates."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    held_out: list[int] = field(default_factory=list)  # the validation clips (indices into the training set)
    setup_seconds: float = 0.0  # before the first epoch: data to the device, optimiser, graph capture


@dataclass
class DeviceVectors:
    """Frames on a device plus the index of every stacked vector; batches are gathered on demand."""

    frames: torch.Tensor  # (total_frames, n_mels)
    starts: torch.Tensor  # (n_vectors,) first frame of each vector
    id_labels: torch.Tensor  # (n_vectors,) machine-ID index of each vector's clip
    clip_of: torch.Tensor  # (n_vectors,) clip index of each vector
    n_frames: int

    @classmethod
    def build(cls, fs: FrameSet, n_frames: int, id_index: dict[str, int], device: torch.device) -> "DeviceVectors":
        starts, clip_of = fs.vector_starts(n_frames)
        clip_labels = np.array([id_index.get(c.machine_id, -1) for c in fs.clips], dtype=np.int64)
        return cls(torch.from_numpy(fs.frames).to(device), torch.from_numpy(starts).to(device),
                   torch.from_numpy(clip_labels[clip_of]).to(device), torch.from_numpy(clip_of).to(device),
                   n_frames)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked vectors ``(len(index), n_frames * n_mels)`` and their ID indices."""
        return gather_vectors(self.frames, self.starts[index], self.n_frames), self.id_labels[index]


def drops_last(n: int, batch_size: int) -> bool:
    """Whether an epoch over ``n`` vectors drops its final batch: only a batch of one (BatchNorm
    cannot train on a single vector)."""
    return n % batch_size == 1


def n_batches(n: int, batch_size: int) -> int:
    """Batches per epoch (:func:`drops_last`)."""
    return n // batch_size if drops_last(n, batch_size) else -(-n // batch_size)


def trainable(data: DeviceVectors, held_out: int) -> DeviceVectors:
    """``data``, checked to hold a batch to train on: two vectors or more (BatchNorm needs two);
    ``held_out``: how many validation clips were set aside, for the message."""
    if len(data) < 2:
        where = f" ({held_out} validation clip(s) held out)" if held_out else ""
        fix = "more or longer training clips" + (", or a smaller validation_split" if held_out else "")
        raise DataError(f"{len(data)} training vector(s){where}; training needs at least 2: {fix}")
    return data


def split_clips(groups: np.ndarray, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random clip-level train/validation split of the clips whose machine IDs are ``groups``
    (whole clips, so overlapping vectors never leak).

    Each ID holds out its own share, at least one clip of an ID with two or more and never an
    ID's last clip, so that every ID has unseen normal clips (they calibrate its decision
    threshold: :meth:`asd.experiment.Results.thresholds`) and clips to train on.
    """
    groups = np.asarray(groups)
    if len(groups) == 0:
        raise DataError("no training clips to train on")
    order = np.random.default_rng(seed).permutation(len(groups))
    share = lambda n: max(1, int(round(n * validation_split))) if validation_split > 0 else 0
    groups = groups[order]
    val = np.concatenate([members[:min(share(len(members)), len(members) - 1)]
                          for members in (order[groups == g] for g in np.unique(groups))])
    return np.sort(np.setdiff1d(order, val)), np.sort(val)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bfloat16 autocast for ``precision="bf16"`` (weights and optimiser state stay fp32), else a no-op.

    The cache is off so that the context also serves inside CUDA-graph capture.
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False)


def mean_loss(model: nn.Module, data: DeviceVectors, batch_size: int = 4096, precision: str = "fp32") -> float:
    """The model's mean loss over ``data`` in evaluation mode (the validation loss)."""
    model.eval()
    total = torch.zeros((), device=data.frames.device)
    with torch.no_grad(), autocast(data.frames.device, precision):
        for b in range(0, len(data), batch_size):
            index = torch.arange(b, min(b + batch_size, len(data)), device=data.frames.device)
            total += model.loss(*data.batch(index)).float().sum()
    model.train()
    return total.item() / len(data)


class FlatAdam:
    """Adam (PyTorch's fused kernel) over a model's parameters laid out in one flat buffer.

    The fused kernel hands each block of threads up to 65,536 elements of one tensor, so a step
    lasts as long as the largest weight's share takes one block (about 50 us for the 640x128
    layers on an H100, a tenth of the sequential net's step). Here the parameters become views
    of one buffer, their gradients are concatenated (one kernel) and the optimiser sees pieces
    of ``piece`` elements: the same update, element by element, in one short kernel. Every
    parameter must get a gradient at every step.
    """

    def __init__(self, params, lr: float, piece: int = 8192, capturable: bool = True):
        self.params = list(params)
        buffer = torch.cat([p.detach().reshape(-1) for p in self.params])
        offset = 0
        for p in self.params:
            p.data = buffer[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        self.piece = piece
        self.pieces = list(buffer.split(piece))
        self.adam = torch.optim.Adam(self.pieces, lr=lr, fused=True, capturable=capturable)

    @property
    def state(self) -> dict:
        return self.adam.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (``set_to_none`` only mirrors torch's optimisers: never zeroed in place)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        grads = torch.cat([p.grad.reshape(-1) for p in self.params]).split(self.piece)
        for piece, grad in zip(self.pieces, grads):
            piece.grad = grad
        self.adam.step()


# Full-batch steps captured in one CUDA graph: an epoch is a few dozen replays, a few dozen calls
# from Python.
STEPS_PER_GRAPH = 32


class CapturedEpoch:
    """One epoch of training steps replayed from CUDA graphs: no Python work or launch per kernel.

    Static-shape graphs are captured once: ``STEPS_PER_GRAPH`` consecutive full-batch steps, each
    reading its batch's indices from a device-side permutation through a device-side step
    counter; a single full-batch step for the epoch's remainder; and (when the vectors do not
    divide into full batches) the final partial-batch step. The steps add their losses into a
    device-side total, read once per epoch. The warm-up steps that capture needs are undone:
    weights, BatchNorm buffers and the optimiser state are restored, so training starts from the
    same state as the eager loop.

    Each instance captures on a stream of its own and draws its random numbers (VAE sampling,
    dropout) from a generator of its own, seeded with ``seed``, so that networks replaying at the
    same time on different streams share nothing: cuBLAS keys its workspace by stream, and
    PyTorch before 2.13 keeps one seed-and-offset pair per generator for all the graphs that
    draw from it. (Captured on the same stream, four networks replayed at once on an H100 hung
    or crashed.)
    """

    def __init__(self, model: nn.Module, opt: "torch.optim.Optimizer | FlatAdam", data: DeviceVectors, batch_size: int,
                 precision: str, seed: int = 0):
        self.model, self.opt, self.data, self.precision = model, opt, data, precision
        n, device = len(data), data.frames.device
        self.n_full = n // batch_size
        self.chunk = min(STEPS_PER_GRAPH, self.n_full)
        # the eager loop's batches (n_batches): a final batch of one is dropped
        self.rest = n - self.n_full * batch_size if n_batches(n, batch_size) > self.n_full else 0
        self.n_trained = self.n_full * batch_size + self.rest
        self.perm = torch.arange(n, device=device)  # the warm-up's order; each epoch overwrites it
        self.total = torch.zeros((), device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)
        batches = self.perm[: self.n_full * batch_size].view(self.n_full, batch_size)
        full = lambda: batches.index_select(0, self.step).view(-1)  # noqa: E731
        tail = lambda: self.perm[self.n_full * batch_size : self.n_full * batch_size + self.rest]  # noqa: E731
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        # BatchNorm counts its updates with a kernel per layer and step, read only without a
        # momentum: those counters are left out of the graphs and advanced once per epoch
        self.counters = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                         and m.momentum is not None and m.num_batches_tracked is not None]
        counts = [m.num_batches_tracked for m in self.counters]
        for m in self.counters:
            m.num_batches_tracked = None
        self.stream = torch.cuda.Stream(device)
        self.rng = torch.Generator(device).manual_seed(seed)
        default_rng = torch.cuda.default_generators[device.index if device.index is not None else
                                                    torch.cuda.current_device()]
        outer_rng = default_rng.graphsafe_get_state()
        default_rng.graphsafe_set_state(self.rng)  # the graphs captured now draw from self.rng
        try:
            self.stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(self.stream):
                for _ in range(3):  # warm-up: creates the optimiser state and the library handles
                    self._step(full() if self.n_full else tail())
            torch.cuda.current_stream(device).wait_stream(self.stream)
            self.chunk_graph = self._capture(full, self.chunk, advance=True) if self.chunk else None
            self.one_graph = self._capture(full, 1, advance=True) if self.chunk and self.n_full % self.chunk else None
            self.tail_graph = self._capture(tail, 1, advance=False) if self.rest else None
        finally:
            default_rng.graphsafe_set_state(outer_rng)
            for m, count in zip(self.counters, counts):
                m.num_batches_tracked = count
        with torch.no_grad():
            for k, v in model.state_dict().items():
                v.copy_(saved[k])
            for state in opt.state.values():
                for v in state.values():
                    if torch.is_tensor(v):
                        v.zero_()
            self.total.zero_()
            self.step.zero_()

    def _capture(self, index_fn, steps: int, advance: bool) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
            for _ in range(steps):
                _train_step(self.model, self.opt, self.data, index_fn(), self.precision, self.total)
                if advance:
                    self.step += 1
        return graph

    def launch(self, perm: torch.Tensor) -> torch.Tensor:
        """Queue one epoch over the vectors in ``perm``'s order; the device-side sum of its losses
        (valid until the next launch)."""
        self.perm.copy_(perm)
        self.step.zero_()
        self.total.zero_()
        for _ in range(self.n_full // self.chunk if self.chunk else 0):
            self.chunk_graph.replay()
        for _ in range(self.n_full % self.chunk if self.chunk else 0):
            self.one_graph.replay()
        if self.rest:
            self.tail_graph.replay()
        for m in self.counters:
            m.num_batches_tracked += self.n_steps
        return self.total

    @property
    def n_steps(self) -> int:
        return self.n_full + (self.rest > 0)


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, data: DeviceVectors, index: torch.Tensor,
                precision: str, total: torch.Tensor) -> None:
    """One update on the vectors at ``index``, eager or captured in a CUDA graph; its loss, summed over
    the batch, added to ``total`` on the device."""
    x, id_labels = data.batch(index)
    with autocast(x.device, precision):
        loss = model.loss(x, id_labels).float().mean()
    # fresh gradients (in a graph, from its pool): accumulating into kept ones costs a kernel per parameter
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        total.add_(loss.detach(), alpha=len(index))


def _eager_epoch(model: nn.Module, opt: torch.optim.Optimizer, data: DeviceVectors, perm: torch.Tensor,
                 batch_size: int, precision: str) -> tuple[torch.Tensor, int, int]:
    """One epoch of eager steps over ``perm``'s order: ``(device-side loss sum, vectors, steps)``."""
    total, steps = torch.zeros((), device=perm.device), n_batches(len(data), batch_size)
    for b in range(steps):
        _train_step(model, opt, data, perm[b * batch_size : (b + 1) * batch_size], precision, total)
    return total, min(len(perm), steps * batch_size), steps


@dataclass
class Queued:
    """What a :func:`fit_steps` job yields at a pause: on CUDA, an event that completes when the
    steps it has queued so far have run (none elsewhere, where work runs as it is queued)."""

    event: torch.cuda.Event | None = None

    @classmethod
    def now(cls, device: torch.device) -> "Queued":
        """Marks the work queued so far on the current stream of ``device``."""
        if device.type != "cuda":
            return cls()
        event = torch.cuda.Event()
        event.record()
        return cls(event)

    @property
    def ready(self) -> bool:
        return self.event is None or self.event.query()


def fit_steps(model: nn.Module, train: FrameSet, fit_cfg: FitConfig, n_frames: int, id_index: dict[str, int],
              device: torch.device, seed: int = 0, progress: bool = True, desc: str = "train",
              precision: str = "fp32", capture: bool | None = None) -> Generator[Queued, None, History]:
    """:func:`fit` as a generator, for :func:`fit_together`: it pauses once after set-up (and graph
    capture), then after queuing each epoch's steps and before waiting for them, so that other
    networks can queue theirs meanwhile; each pause yields a :class:`Queued`. Its return value is
    the :class:`History`."""
    capture = device.type == "cuda" if capture is None else capture
    if capture and device.type != "cuda":
        raise ValueError("CUDA-graph capture needs a CUDA device")
    set_up = time.perf_counter()
    torch.manual_seed(seed)
    tr_idx, val_idx = split_clips(train.clip_ids, fit_cfg.validation_split, seed)
    data = trainable(DeviceVectors.build(train.subset(tr_idx), n_frames, id_index, device), len(val_idx))
    val = DeviceVectors.build(train.subset(val_idx), n_frames, id_index, device) if len(val_idx) else None
    model.to(device).train()
    opt = (FlatAdam(model.parameters(), fit_cfg.lr) if capture
           else torch.optim.Adam(model.parameters(), lr=fit_cfg.lr, fused=device.type == "cuda"))
    epoch = CapturedEpoch(model, opt, data, fit_cfg.batch_size, precision, seed) if capture else None
    gen = torch.Generator(device=device).manual_seed(seed)
    hist = History(held_out=val_idx.tolist(), setup_seconds=time.perf_counter() - set_up)
    yield Queued()
    start = time.perf_counter()
    bar = tqdm(range(fit_cfg.epochs), desc=desc, disable=not progress, unit="epoch")
    for _ in bar:
        perm = torch.randperm(len(data), generator=gen, device=device)
        if epoch is not None:
            total, seen, steps = epoch.launch(perm), epoch.n_trained, epoch.n_steps
        else:
            total, seen, steps = _eager_epoch(model, opt, data, perm, fit_cfg.batch_size, precision)
        yield Queued.now(device)
        hist.train_loss.append(total.item() / seen)
        hist.steps += steps
        if val is not None:
            hist.val_loss.append(mean_loss(model, val, precision=precision))
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.4g}")
    hist.seconds = time.perf_counter() - start
    model.eval()
    return hist


@contextmanager
def cublaslt(device: torch.device) -> Iterator[None]:
    """On CUDA, matrix products on cuBLASLt's kernels while inside (fp32 still); a no-op elsewhere.

    cuBLAS's own choice for the sequential net's bottleneck weight gradient (8x256 by 256x128)
    took 52 us on an H100, and the step was 9% shorter with cuBLASLt's. Training sets it for
    eager and captured steps alike, so that both pick the same kernels.
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cuda.preferred_blas_library()
    torch.backends.cuda.preferred_blas_library("cublaslt")
    try:
        yield
    finally:
        torch.backends.cuda.preferred_blas_library(previous)


# How long the thread that queues the jobs' epochs sleeps when every job's epoch is still running:
# short against an epoch (a tenth of a second or more at the report's sizes), long enough not to spin.
POLL_S = 2e-4


def fit_together(jobs: list[Generator[Queued, None, History]], device: torch.device,
                 on_done: Callable[[int, History], None] | None = None,
                 priorities: list[int] | None = None) -> list[History]:
    """Run :func:`fit_steps` generators together until all are done; their histories.

    On CUDA each job has a stream of its own: one Python thread queues a job's next epoch as soon
    as its last one has run (never waiting on one job while another could go on), while the GPU
    works on the other jobs' epochs, so that small networks' kernels overlap (no threads, hence no
    contention for Python's GIL and no capture racing a replay). Every job sets up (captures its
    graphs) before any trains. A captured job (the default on CUDA) draws from a generator of its
    own (:class:`CapturedEpoch`), so a network trained with others gets the random numbers it gets
    trained alone; eager jobs share PyTorch's generator, so their dropout masks and VAE samples
    interleave (in a fixed order on the CPU, where the jobs take turns epoch by epoch).

    ``on_done(i, history)`` is called as soon as job ``i`` finishes (on its stream, while the
    others still train): a run cut short keeps the networks that finished.

    ``priorities`` (CUDA only) are the jobs' stream priorities, lower first, as CUDA orders them
    (``torch.cuda.Stream(priority=-1)`` is high): the GPU runs a waiting kernel of a high-priority
    stream before the others', so the job that bounds the wall time can run at nearly its solo
    speed while the others fill the gaps.

    On CUDA the jobs' matrix products run on cuBLASLt's kernels (:func:`cublaslt`).
    """
    priorities = priorities or [0] * len(jobs)
    streams = [torch.cuda.Stream(device, priority=p) if device.type == "cuda" and len(jobs) > 1 else None
               for p in priorities]
    on_stream = lambda i: torch.cuda.stream(streams[i]) if streams[i] is not None else nullcontext()  # noqa: E731
    histories: list[History | None] = [None] * len(jobs)
    with cublaslt(device):
        queued = []
        for i, job in enumerate(jobs):
            with on_stream(i):
                queued.append(next(job))  # set-up: data on the device, graphs captured
        live = list(range(len(jobs)))
        while live:
            busy = 0
            for i in list(live):
                if not queued[i].ready:
                    busy += 1
                    continue
                with on_stream(i):
                    try:
                        queued[i] = next(jobs[i])
                    except StopIteration as done:
                        histories[i] = done.value
                        live.remove(i)
                        if on_done is not None:
                            on_done(i, done.value)
            if busy and busy == len(live):  # every job's epoch still running: look again shortly
                time.sleep(POLL_S)
    for stream in streams:
        if stream is not None:
            torch.cuda.current_stream(device).wait_stream(stream)
    return histories


def fit(model: nn.Module, train: FrameSet, fit_cfg: FitConfig, n_frames: int, id_index: dict[str, int],
        device: torch.device, seed: int = 0, progress: bool = True, desc: str = "train",
        precision: str = "fp32", capture: bool | None = None) -> History:
    """Train ``model`` with Adam on ``train``'s stacked vectors (a clip-level validation split held out).

    ``seed`` fixes the split, the shuffling and PyTorch's global generator (VAE sampling, dropout).
    ``capture`` (default: on CUDA) replays each epoch's steps from CUDA graphs
    (:class:`CapturedEpoch`) with the fused, capturable Adam over one flat buffer (:class:`FlatAdam`);
    the CPU runs the same steps eagerly.
    """
    return fit_together([fit_steps(model, train, fit_cfg, n_frames, id_index, device, seed, progress, desc,
                                   precision, capture)], device)[0]


def score(model: nn.Module, fs: FrameSet, n_frames: int, id_index: dict[str, int], device: torch.device,
          batch_size: int = 8192, precision: str = "fp32") -> np.ndarray:
    """Anomaly score of every clip: the mean of its vectors' scores (e.g. reconstruction MSE); none for no clips."""
    if not len(fs):
        return np.zeros(0)
    return clip_means(*vector_scores(model, fs, n_frames, id_index, device, batch_size, precision), len(fs))


def vector_scores(model: nn.Module, fs: FrameSet, n_frames: int, id_index: dict[str, int], device: torch.device,
                  batch_size: int = 8192, precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Every stacked vector's score (e.g. its reconstruction MSE), clip by clip in time order, and
    the clip each belongs to."""
    data = DeviceVectors.build(fs, n_frames, id_index, device)
    model.to(device).eval()
    with torch.no_grad(), autocast(device, precision):
        parts = [model.score(*data.batch(torch.arange(b, min(b + batch_size, len(data)), device=device))).double()
                 for b in range(0, len(data), batch_size)]
    return torch.cat(parts).cpu().numpy(), data.clip_of.cpu().numpy()
