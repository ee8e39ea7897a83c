"""asd.models: the report's four networks, their sizes, layers, initialisation, losses and scores."""
from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest
import torch
from torch import nn

from asd.config import NETWORKS, Config, get_config
from asd.models import REPORT_DROPOUT_LAYERS, REPORT_PARAMS, build, dense_widths, n_params, summary, summary_rows

CFG = Config()
DIM = CFG.feature.dim  # 640


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def vae_count(dim: int, hidden: int, latent: int, batchnorm: bool) -> int:
    """640-400-400-(20, 20)-20-400-400-640, optionally a BatchNorm (2 * width) after each hidden layer."""
    count = (dense(dim, hidden) + dense(hidden, hidden) + 2 * dense(hidden, latent)
             + dense(latent, hidden) + dense(hidden, hidden) + dense(hidden, dim))
    return count + (4 * 2 * hidden if batchnorm else 0)


def sequential_count(dim: int, hidden: int, bottleneck: int) -> int:
    """The DCASE baseline: Dense+BatchNorm blocks dim-h-h-h-h-b-h-h-h-h, then Dense(h, dim)."""
    widths = [dim] + [hidden] * 4 + [bottleneck] + [hidden] * 4
    return sum(dense(a, b) + 2 * b for a, b in zip(widths, widths[1:])) + dense(hidden, dim)


HAND_COUNT = {
    "baseline": vae_count(DIM, 400, 20, batchnorm=False),
    "batchnorm": vae_count(DIM, 400, 20, batchnorm=True),
    "dropout": vae_count(DIM, 400, 20, batchnorm=True),
    "sequential": sequential_count(DIM, 128, 8),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_parameter_counts_match_report(name):
    model = build(name, CFG)
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert HAND_COUNT[name] == REPORT_PARAMS[name] == counted == n_params(model)


def test_parameter_counts_follow_net_config():
    cfg = replace(CFG, net=replace(CFG.net, hidden=64, latent=4, seq_hidden=32, bottleneck=3))
    assert n_params(build("batchnorm", cfg)) == vae_count(DIM, 64, 4, batchnorm=True)
    assert n_params(build("sequential", cfg)) == sequential_count(DIM, 32, 3)


def test_summary_baseline_layers_in_order():
    model = build("baseline", CFG)
    rows = summary_rows(model, DIM)
    want = [("Linear", 400, dense(640, 400)), ("ReLU", 400, 0), ("Linear", 400, dense(400, 400)), ("ReLU", 400, 0),
            ("Linear", 20, dense(400, 20)), ("Linear", 20, dense(400, 20)),
            ("Linear", 400, dense(20, 400)), ("ReLU", 400, 0), ("Linear", 400, dense(400, 400)), ("ReLU", 400, 0),
            ("Linear", 640, dense(400, 640))]
    assert [(n, s, p) for n, s, p in rows] == [(f"{k}-{i + 1}", (-1, w), p) for i, (k, w, p) in enumerate(want)]
    assert sum(p for _, _, p in rows) == n_params(model)

    text = summary(model, DIM)
    lines = text.splitlines()
    positions = []
    for name, shape, params in rows:
        hits = [i for i, line in enumerate(lines)
                if re.search(rf"\b{name}\b", line) and str(list(shape)) in line
                and line.rstrip().endswith(f"{params:,}")]
        assert len(hits) == 1, name
        positions.append(hits[0])
    assert positions == sorted(positions)
    assert "Trainable params: 858,280" in text


def test_summary_sequential_layers_in_order():
    model = build("sequential", CFG)
    model.train()
    rows = summary_rows(model, DIM)
    assert model.training  # summary leaves the mode as it was
    widths = [128] * 4 + [8] + [128] * 4
    want = [k for _ in widths for k in ("Linear", "BatchNorm1d", "ReLU")] + ["Linear"]
    assert [n.rsplit("-", 1)[0] for n, _, _ in rows] == want
    assert [s for _, s, _ in rows] == [(-1, w) for w in widths for _ in range(3)] + [(-1, 640)]
    assert "Trainable params: 267,928" in summary(model, DIM)


def test_dropout_network_has_the_report_layer_order():
    """Dropout only after the first encoder and the first decoder BatchNorm, as the report's table lists."""
    model = build("dropout", CFG)
    assert tuple(n for n, _, _ in summary_rows(model, DIM, activations=False)) == REPORT_DROPOUT_LAYERS
    kinds = [n.rsplit("-", 1)[0] for n, _, _ in summary_rows(model, DIM)]
    assert kinds.count("Dropout") == 2 and kinds.count("BatchNorm1d") == 4
    assert "Trainable params: 861,480" in summary(model, DIM)
    # without its dropout layers, the Dropout network is the BatchNorm network, layer for layer
    no_drop = [n for n, _, _ in summary_rows(model, DIM, activations=False) if not n.startswith("Dropout")]
    bn = [n for n, _, _ in summary_rows(build("batchnorm", CFG), DIM, activations=False)]
    assert [n.rsplit("-", 1)[0] for n in no_drop] == [n.rsplit("-", 1)[0] for n in bn]


def test_dense_widths_draw_each_network_as_its_config_builds_it():
    h, z, net = CFG.net.hidden, CFG.net.latent, CFG.net
    vae = [DIM, h, h, z, z, h, h, DIM]
    heads = ["", "", "", "", "parallel", "", "", ""]  # the mean and log-variance heads read the same layer
    assert dense_widths(build("baseline", CFG), DIM) == list(zip(vae, heads))
    bn = ["", "BN", "BN", "", "parallel", "BN", "BN", ""]
    assert dense_widths(build("batchnorm", CFG), DIM) == list(zip(vae, bn))
    dropped = ["", "BN+dropout", "BN", "", "parallel", "BN+dropout", "BN", ""]  # the report's two dropout layers
    assert dense_widths(build("dropout", CFG), DIM) == list(zip(vae, dropped))
    seq = [DIM] + [net.seq_hidden] * 4 + [net.bottleneck] + [net.seq_hidden] * 4 + [DIM]
    assert dense_widths(build("sequential", CFG), DIM) == [(w, "BN" if 0 < i < len(seq) - 1 else "")
                                                           for i, w in enumerate(seq)]
    idnn = dense_widths(build("idnn", CFG), DIM)
    assert idnn[0][0] == DIM * 4 // 5 and idnn[-1][0] == DIM // 5  # reads four frames, predicts the centre one


def test_sequential_batchnorm_and_xavier_init():
    torch.manual_seed(0)
    model = build("sequential", CFG)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(bns) == 9
    assert all(bn.momentum == 0.01 and bn.eps == 1e-3 for bn in bns)  # Keras momentum 0.99, epsilon 1e-3
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 10
    for lin in linears:
        fan_out, fan_in = lin.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform
        w = lin.weight.detach()
        assert torch.count_nonzero(lin.bias) == 0
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.9 * bound  # PyTorch's default bound 1/sqrt(fan_in) is far smaller here
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)


def test_dropout_layers_have_configured_rate():
    cfg = replace(CFG, net=replace(CFG.net, dropout=0.3))
    drops = [m for m in build("dropout", cfg).modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.3 for d in drops)
    for name in ("baseline", "batchnorm", "sequential"):
        assert not any(isinstance(m, nn.Dropout) for m in build(name, cfg).modules())
    assert not any(isinstance(m, nn.BatchNorm1d) for m in build("baseline", cfg).modules())


@pytest.mark.parametrize("name", NETWORKS)
def test_a_few_adam_steps_on_a_fixed_batch_lower_loss_and_score(name):
    """Each network's loss is something Adam can minimise, and its score follows: vectors it was
    trained on score lower afterwards than before, and lower than vectors it never saw."""
    torch.manual_seed(0)
    model = build(name, CFG)
    x, ids = torch.randn(64, DIM), torch.zeros(64, dtype=torch.long)
    unseen = torch.randn(64, DIM) * 2
    model.eval()
    before = model.score(x, ids).mean().item()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(300 if name == "sequential" else 100):  # its BatchNorm statistics are slow (momentum 0.01)
        loss = model.loss(x, ids).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    after = model.score(x, ids)
    assert after.shape == (64,) and torch.all(after >= 0)
    assert losses[-1] < 0.8 * losses[0]
    assert after.mean().item() < 0.8 * before
    assert after.mean().item() < model.score(unseen, ids).mean().item()


@pytest.mark.parametrize("name", ["baseline", "batchnorm", "dropout"])
def test_vae_eval_deterministic_train_stochastic(name):
    torch.manual_seed(0)
    model = build(name, CFG)
    x, ids = torch.randn(16, DIM), torch.zeros(16, dtype=torch.long)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.score(x, ids), model.score(x, ids), rtol=0, atol=0)
        torch.testing.assert_close(model(x)[0], model(x)[0], rtol=0, atol=0)
        model.train()
        assert not torch.equal(model(x)[0], model(x)[0])


def test_vae_score_and_loss_by_hand():
    torch.manual_seed(0)
    model = build("baseline", replace(CFG, net=replace(CFG.net, kl_weight=0.5))).eval()
    x, ids = torch.randn(4, DIM), torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        h = model.encoder(x)
        mu, logvar = model.mu(h), model.logvar(h)
        recon = model.decoder(mu)  # evaluation reads the posterior mean
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)
        torch.testing.assert_close(model.score(x, ids), ((recon - x) ** 2).mean(dim=1))
        torch.testing.assert_close(model.loss(x, ids), ((recon - x) ** 2).sum(dim=1) + 0.5 * kl)


def test_sequential_loss_is_mse_by_hand():
    torch.manual_seed(0)
    model = build("sequential", CFG).eval()
    x, ids = torch.randn(4, DIM), torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        want = ((model.net(x) - x) ** 2).mean(dim=1)
        torch.testing.assert_close(model.loss(x, ids), want)
        torch.testing.assert_close(model.score(x, ids), want)


def test_unknown_network():
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        build("resnet", CFG)


def test_the_vae_samples_with_the_posterior_standard_deviation(monkeypatch):
    """z = mu + exp(logvar / 2) * eps: with eps = 1, the decoder reads mu + sigma."""
    torch.manual_seed(0)
    model = build("baseline", get_config("quick")).train()
    x = torch.randn(4, 640)
    monkeypatch.setattr(torch, "randn_like", lambda t: torch.ones_like(t))
    with torch.no_grad():
        h = model.encoder(x)
        mu, logvar = model.mu(h), model.logvar(h)
        torch.testing.assert_close(model(x)[0], model.decoder(mu + torch.exp(0.5 * logvar)))
