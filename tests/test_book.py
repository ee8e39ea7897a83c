"""asd.book: the set-up every chapter runs, and what its "Which data?" boxes say about each kind of data."""
from __future__ import annotations

import torch

from asd.book import caveat, measures_the_release, setup
from asd.experiment import DataSource


def test_the_caveat_says_what_the_numbers_may_be_compared_with(tmp_path):
    stand_in = DataSource(tmp_path / "synth" / "dev_data", None, True, "synthetic")
    assert "not the report's numbers" in caveat(stand_in, "full")
    assert not measures_the_release(stand_in)
    (tmp_path / "dcase" / "dev_data" / "slider" / "train").mkdir(parents=True)
    for root in (tmp_path / "dcase" / "dev_data", tmp_path / "dcase"):  # the set or the release root
        release = DataSource(root, None, False, "real")
        assert caveat(release, "full").endswith("can be set beside the report's.")
        assert "quick-profile run trains for fewer epochs" in caveat(release, "quick")
        assert measures_the_release(release)
    plant = DataSource(tmp_path / "plant", None, False, "real recordings")
    assert caveat(plant, "full").startswith("These are recordings of your own")
    assert not measures_the_release(plant)  # published slider numbers are not drawn over them


def test_setup_seeds_everything_and_names_the_data_it_found(make_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASD_PROFILE", "quick")
    torch.manual_seed(123)
    cfg, src = setup(data=False)
    assert (cfg.profile, src) == ("quick", None)
    assert torch.initial_seed() == cfg.seed
    dev = make_dataset(tmp_path / "release" / "dev_data", ids=("00",), n_train=2, seconds=0.5)
    monkeypatch.setenv("ASD_DATA", str(tmp_path / "release"))  # the release root: its dev_data is found
    cfg, src = setup()
    assert (src.dev, src.eval, src.synthetic, src.eval_label) == (dev, None, False, None)
    assert capsys.readouterr().out == f"data: {src.label} | profile: quick\n"
    assert src.label == f"real DCASE 2020 data ({dev}; quick profile)"
    ev = make_dataset(tmp_path / "release" / "eval_data", ids=("01",), n_train=2, seconds=0.5)
    _, src = setup()  # and now its eval_data, named as itself
    assert (src.eval, src.eval_label) == (ev, f"real DCASE 2020 data ({ev}; quick profile)")
