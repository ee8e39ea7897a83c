"""asd.book: what the chapters' "Which data?" boxes say about each kind of data."""
from __future__ import annotations

from asd.book import caveat
from asd.experiment import DataSource


def test_the_caveat_says_what_the_numbers_may_be_compared_with(tmp_path):
    stand_in = DataSource(tmp_path / "synth" / "dev_data", None, True, "synthetic")
    assert "not the report's numbers" in caveat(stand_in, "full")
    (tmp_path / "dcase" / "dev_data").mkdir(parents=True)
    for root in (tmp_path / "dcase" / "dev_data", tmp_path / "dcase"):  # the set or the release root
        release = DataSource(root, None, False, "real")
        assert caveat(release, "full").endswith("can be set beside the report's.")
        assert "quick-profile run trains for fewer epochs" in caveat(release, "quick")
    plant = DataSource(tmp_path / "plant", None, False, "real recordings")
    assert caveat(plant, "full").startswith("These are recordings of your own")
