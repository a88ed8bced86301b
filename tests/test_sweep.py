import pytest

from cifarnb import experiments, profiles
from cifarnb.cli import main
from cifarnb.results import ResultStore
from cifarnb.sweep import run_section


def test_sweep_fills_the_store_with_the_notebooks_runs(tmp_path, cifar_root, capsys):
    assert main(["sweep", "--section", "vgg", "features", "--profile", "smoke", "--results", str(tmp_path),
                 "--data", str(cifar_root), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    store, smoke = ResultStore(tmp_path), profiles.get("smoke")
    for config in [*experiments.vgg_configs(smoke).values(), *experiments.feature_map_configs(smoke, 0).values()]:
        assert store.load(config) is not None, config.model
    assert len(list((tmp_path / "arrays").glob("feature_maps_*.npz"))) == 3
    assert "feature maps computed, model" in out
    # A second sweep only loads.
    assert main(["sweep", "--section", "vgg", "features", "--profile", "smoke", "--results", str(tmp_path),
                 "--data", str(cifar_root), "--device", "cpu"]) == 0
    again = capsys.readouterr().out
    assert "trained" not in again and "feature maps read from the store" in again


def test_unknown_section_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="section='plots' is not one of ablations, zoo"):
        run_section("plots", profiles.get("smoke"), ResultStore(tmp_path))
