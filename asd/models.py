"""The report's four networks and the networks beyond it, with their losses and anomaly scores.

Every network maps a batch of stacked log-mel vectors ``x`` (and the clips' machine-ID
indices ``id_labels``, used only by ID-aware detectors) to a per-vector training ``loss`` and a
per-vector anomaly ``score``; a clip's score is the mean over its vectors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from asd.config import BEYOND_NETWORKS, NETWORKS, Config

REPORT_PARAMS = {"baseline": 858_280, "batchnorm": 861_480, "dropout": 861_480, "sequential": 267_928}


# The report's Dropout network as its layer table lists it (torchsummary numbering; the ReLUs are
# functional there, as in the PyTorch VAE example, so the table does not list them).
REPORT_DROPOUT_LAYERS = ("Linear-1", "BatchNorm1d-2", "Dropout-3", "Linear-4", "BatchNorm1d-5",
                         "Linear-6", "Linear-7", "Linear-8", "BatchNorm1d-9", "Dropout-10",
                         "Linear-11", "BatchNorm1d-12", "Linear-13")


def _block(n_in: int, n_out: int, batchnorm: bool, dropout: float = 0.0, **bn_kwargs) -> list[nn.Module]:
    """Linear, [BatchNorm], [Dropout], ReLU (dropout and ReLU commute: the order is the report's table)."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(n_out, **bn_kwargs))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.ReLU())
    return layers


class VAE(nn.Module):
    """640-400-400-(20, 20)-20-400-400-640 variational autoencoder (the
    PyTorch VAE example's shape).

    Training loss: summed squared reconstruction error plus ``kl_weight``
    times the KL divergence of the approximate posterior from N(0, I). At
    evaluation the decoder reads the posterior mean, so the anomaly score
    (mean squared error) is deterministic. ``dropout`` acts only after the
    first encoder block and the first decoder block, as in the report's
    layer table.
    """

    def __init__(self, dim: int, hidden: int, latent: int, kl_weight: float,
                 batchnorm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.kl_weight = kl_weight
        self.encoder = nn.Sequential(*_block(dim, hidden, batchnorm, dropout),
                                     *_block(hidden, hidden, batchnorm))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(
            *_block(latent, hidden, batchnorm, dropout),
            *_block(hidden, hidden, batchnorm),
            nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The reconstruction, and the posterior's mean and log-variance."""
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        if self.training:  # one sample of the posterior
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        return self.decoder(z), mu, logvar

    def loss(self, x: torch.Tensor, id_labels: torch.Tensor) -> torch.Tensor:
        recon, mu, logvar = self(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
        return ((recon - x) ** 2).sum(dim=1) + self.kl_weight * kl

    def score(self, x: torch.Tensor, id_labels: torch.Tensor) -> torch.Tensor:
        return ((self(x)[0] - x) ** 2).mean(dim=1)


class Autoencoder(nn.Module):
    """The DCASE 2020 baseline: Dense-BatchNorm-ReLU blocks around an 8-d
    bottleneck, then Dense.

    Keras defaults are kept: Glorot-uniform weights, zero biases, BatchNorm
    momentum 0.99 (PyTorch ``momentum=0.01``) and epsilon 1e-3. Loss and
    score: mean squared error.
    """

    def __init__(self, dim: int, hidden: int = 128, bottleneck: int = 8):
        super().__init__()
        widths = [dim, *[hidden] * 4, bottleneck, *[hidden] * 4]
        layers = [m for a, b in zip(widths, widths[1:]) for m in
                  _block(a, b, batchnorm=True, momentum=0.01, eps=1e-3)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, dim))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, x: torch.Tensor, id_labels: torch.Tensor) -> torch.Tensor:
        return ((self(x) - x) ** 2).mean(dim=1)

    score = loss


class IDNN(nn.Module):
    """Interpolation DNN (Suefusa et al. 2020): predict a vector's centre frame from the frames around it.

    A stacked vector holds ``n_frames`` log-mel frames, frame-major; the network reads all but the
    centre frame (frames 1, 2, 4, 5 of 5) and regresses the centre. An autoencoder can pass part
    of its input through; here the target is never an input, so the error stays high where the
    sound's time course is unlike the normal one (the paper's case: non-stationary machines such
    as the slider). Dense-BatchNorm-ReLU blocks as in the DCASE baseline. Loss and score: mean
    squared error of the predicted centre frame.
    """

    def __init__(self, n_mels: int, n_frames: int, hidden: int = 128, bottleneck: int = 32):
        super().__init__()
        if n_frames < 3 or n_frames % 2 == 0:
            raise ValueError(f"IDNN needs an odd number of frames >= 3 around a centre, got {n_frames}")
        self.n_mels, self.centre = n_mels, n_frames // 2
        widths = [n_mels * (n_frames - 1), hidden, hidden, bottleneck, hidden, hidden]
        layers = [m for a, b in zip(widths, widths[1:]) for m in _block(a, b, batchnorm=True)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, n_mels))

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(context, centre)``: the vector without its centre frame, and the centre frame."""
        lo, hi = self.centre * self.n_mels, (self.centre + 1) * self.n_mels
        return torch.cat([x[:, :lo], x[:, hi:]], dim=1), x[:, lo:hi]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted centre frame of each full stacked vector (its own centre is not read)."""
        return self.net(self.split(x)[0])

    def loss(self, x: torch.Tensor, id_labels: torch.Tensor) -> torch.Tensor:
        return ((self(x) - self.split(x)[1]) ** 2).mean(dim=1)

    score = loss


class IDClassifier(nn.Module):
    """An MLP that tells a machine type's IDs apart, used as an anomaly detector.

    Trained with cross-entropy on normal vectors labelled with their machine ID. Assumption: the
    other IDs of the same machine type act as proxy outliers, so the features that separate the
    IDs are also those an anomaly disturbs; a vector the network cannot confidently assign to its
    own ID is anomalous. Score: the negative log-probability of the vector's own ID. Needs at
    least two IDs.
    """

    def __init__(self, dim: int, n_ids: int, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        if n_ids < 2:
            raise ValueError(f"the ID classifier needs at least 2 machine IDs to tell apart, got {n_ids}")
        self.net = nn.Sequential(*_block(dim, hidden, batchnorm=True, dropout=dropout),
                                 *_block(hidden, hidden, batchnorm=True, dropout=dropout),
                                 nn.Linear(hidden, n_ids))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, x: torch.Tensor, id_labels: torch.Tensor) -> torch.Tensor:
        """``-log p(own ID)`` as ``softplus(logsumexp(other logits - own logit))``.

        The same value as cross-entropy, but it does not round to 0 for confident vectors, so
        the scores of well-classified clips still rank.
        """
        logits = self(x)
        own = logits.gather(1, id_labels[:, None])
        others = logits.masked_fill(F.one_hot(id_labels, logits.shape[1]).bool(), float("-inf"))
        return F.softplus(torch.logsumexp(others - own, dim=1))

    score = loss


def build(name: str, cfg: Config | None = None, n_ids: int = 1) -> nn.Module:
    """A freshly initialised network by name (``cfg``: default the report's; ``n_ids``: for ID-aware networks)."""
    cfg = cfg or Config()
    dim, net = cfg.feature.dim, cfg.net
    if name == "baseline":
        return VAE(dim, net.hidden, net.latent, net.kl_weight)
    if name == "batchnorm":
        return VAE(dim, net.hidden, net.latent, net.kl_weight, batchnorm=True)
    if name == "dropout":
        return VAE(dim, net.hidden, net.latent, net.kl_weight, batchnorm=True, dropout=net.dropout)
    if name == "sequential":
        return Autoencoder(dim, net.seq_hidden, net.bottleneck)
    if name == "idnn":
        return IDNN(cfg.feature.n_mels, cfg.feature.n_frames, cfg.beyond.idnn_hidden, cfg.beyond.idnn_bottleneck)
    if name == "idclf":
        return IDClassifier(dim, n_ids, cfg.beyond.idclf_hidden, cfg.beyond.idclf_dropout)
    raise ValueError(f"unknown network {name!r}; choose from {', '.join((*NETWORKS, *BEYOND_NETWORKS))}")


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _called(model: nn.Module, dim: int, activations: bool = True) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """``(leaf layer, output shape)`` in call order for one batch of zeros, in evaluation mode."""
    called: list[tuple[nn.Module, tuple[int, ...]]] = []
    leaves = [m for m in model.modules()
              if not list(m.children()) and (activations or not isinstance(m, nn.ReLU))]
    handles = [m.register_forward_hook(lambda module, _inp, out: called.append((module, tuple(out.shape))))
               for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, dim))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return called


def summary_rows(model: nn.Module, dim: int, activations: bool = True) -> list[tuple[str, tuple[int, ...], int]]:
    """``(layer, output shape, params)`` per leaf layer in call order, as torchsummary lists them.

    ``activations=False`` leaves the ReLUs out, as torchsummary does for functional ones.
    """
    return [(f"{type(m).__name__}-{k}", (-1, *shape[1:]), sum(p.numel() for p in m.parameters()))
            for k, (m, shape) in enumerate(_called(model, dim, activations), start=1)]


def dense_widths(model: nn.Module, dim: int) -> list[tuple[int, str]]:
    """A network's shape for a diagram: the width its first dense layer reads (``dim``, or less
    where the network reads part of the vector, as IDNN), then each dense layer's output width in
    call order, as ``(width, note)``. The note names what acts on that output before the next dense
    layer (``"BN"``, ``"dropout"``, joined by ``"+"``), or is ``"parallel"`` for a dense layer that
    reads the same input as the one before it (the VAE's mean and log-variance heads)."""
    columns: list[list] = []
    previous: nn.Linear | None = None
    for m, _ in _called(model, dim, activations=False):
        if isinstance(m, nn.Linear):
            if previous is None:
                columns.append([m.in_features, []])
            parallel = previous is not None and m.in_features == previous.in_features != previous.out_features
            columns.append([m.out_features, ["parallel"] if parallel else []])
            previous = m
        elif isinstance(m, (nn.BatchNorm1d, nn.Dropout)):
            columns[-1][1].append("BN" if isinstance(m, nn.BatchNorm1d) else "dropout")
    return [(width, "+".join(notes)) for width, notes in columns]


def summary(model: nn.Module, dim: int) -> str:
    """A torchsummary-style table of ``model`` (layer, output shape, params) with the totals,
    its columns as narrow as their contents (it fits a phone's screen)."""
    rows = [(name, str(list(shape)), f"{params:,}") for name, shape, params in summary_rows(model, dim)]
    head = ("Layer (type)", "Output Shape", "Param #")
    w = [max(len(r[k]) for r in [head, *rows]) for k in range(3)]
    line = lambda r: f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}"  # noqa: E731
    rule = sum(w) + 4
    return "\n".join(["-" * rule, line(head), "=" * rule, *map(line, rows), "=" * rule,
                      f"Trainable params: {n_params(model):,}", "-" * rule])
