import json

import pytest

from cifarnb.study import profiles, recipes, reference
from cifarnb.study.sections import batchnorm, fastresnet9, model_zoo, optimize_resnet18
from cifarnb.study.notebook import NotebookParameterError, setup


def test_full_profile_is_exactly_the_report():
    full = profiles.get("full")
    common = reference.raw()["ablations_resnet18"]["common"]
    loss_configs = optimize_resnet18.ablation_configs(full, "loss")
    baseline = loss_configs["CrossEntropyLoss"]
    assert (baseline.model, baseline.epochs, baseline.batch_size, baseline.lr) == ("resnet18", common["epochs"],
                                                                                  common["batch_size"], common["lr"])
    assert (baseline.weight_decay, baseline.optimizer, baseline.momentum, baseline.scheduler) == (5e-4, "sgd", 0.9,
                                                                                                 "plateau")
    assert baseline.n_train is None and baseline.n_test is None
    zoo = model_zoo.zoo_config(full, "wideresnet28x10")
    assert (zoo.epochs, zoo.lr, zoo.plateau_factor, zoo.plateau_patience, zoo.plateau_cooldown, zoo.min_lr) == (
        200, 0.1, 0.5, 5, 5, 1e-6)
    assert set(full.zoo_models) == set(reference.model_zoo().model)
    # models/wideresnet.py: nn.Dropout(), and the projection shortcut on the raw block input
    assert zoo.model_options == {"dropout": 0.5, "projection_input": "block_input"}
    assert zoo.bn_shards == 4 and model_zoo.zoo_config(full, "lenet5").bn_shards is None  # DataParallel, BN only
    assert baseline.bn_shards == 4
    plain = fastresnet9.trick_ladder(full, "plain")
    assert plain["ResNet9"].lr == 0.01 and plain["ResNet9"].epochs == 200
    assert fastresnet9.resnet9_configs(full)["ResNet9"] == plain["ResNet9"]  # report 1.4.1 trains ResNet9 plainly
    vgg = batchnorm.vgg_configs(full)["VGG-A"]
    # The course template's pipeline, biases and initialisation; VGG_acc.py's evaluations every 100 steps.
    assert (vgg.epochs, vgg.augment, vgg.normalization, vgg.model_options) == (
        20, False, "half", {"init": "xavier_normal", "bias": "template"})
    assert vgg.eval_every_steps == 100 and vgg.bn_shards is None  # VGG_acc.py runs on one GPU
    landscape = batchnorm.landscape_config(full)
    assert landscape.learning_rates == (0.05, 0.075, 0.1, 0.125, 0.15) and landscape.seed == 2023
    assert (landscape.augment, landscape.normalization, landscape.init, landscape.bias) == (
        False, "half", "xavier_normal", "template")


def test_the_augmented_vgg_variant_keeps_the_earlier_keys():
    """The crop + flip variant is every VGG run made before the template pipeline: same keys."""
    augmented = batchnorm.vgg_configs(profiles.get("smoke"), "augmented")["VGG-A"]
    assert augmented.augment and augmented.normalization == "cifar10" and augmented.model_options == {}
    assert augmented.key() == augmented.replace(augment=True, normalization="cifar10").key()
    assert "augment" not in json.dumps(augmented.to_dict()) or augmented.key() != \
        batchnorm.vgg_configs(profiles.get("smoke"))["VGG-A"].key()


def test_ablation_groups_vary_one_field_and_share_the_baseline():
    smoke = profiles.get("smoke")
    keys = {group: {label: c.key() for label, c in optimize_resnet18.ablation_configs(smoke, group).items()}
            for group in reference.ABLATION_FIELDS}
    assert keys["loss"]["CrossEntropyLoss"] == keys["weight_decay"]["5e-4"] == keys["activation"]["ReLU"] \
        == keys["optimizer"]["SGD"] == keys["scheduler"]["ReduceLROnPlateau"]
    assert sum(len(set(group.values())) for group in keys.values()) - 4 == 21


@pytest.mark.parametrize("recipe", fastresnet9.LADDER_RECIPES)
def test_trick_ladder_adds_one_change_per_step(recipe):
    ladder = list(fastresnet9.trick_ladder(profiles.get("quick"), recipe).values())
    code_model = {"linear_bias": False, "stem": "whitening", "frozen_bn_scale": True, "logit_scale": 0.125}
    assert ladder[0].model == "resnet9" and ladder[0].model_options == {"linear_bias": False}
    assert ladder[1].model_options == code_model
    assert ladder[2].model_options == {**code_model, "pool_before_bn": True}
    assert ladder[3].label_smoothing == 0.2 and ladder[2].label_smoothing == 0
    assert ladder[4].model == "fastresnet9" and ladder[4].model_options == code_model
    assert not ladder[4].tta_flip and ladder[5].tta_flip
    # Everything else is the recipe, the same on every step.
    training = {"batch_size", "lr", "scheduler", "ema_decay", "nesterov", "epochs", "optimizer", "augmentation"}
    assert len({tuple(getattr(c, f) for f in sorted(training)) for c in ladder}) == 1
    if recipe == "report":
        assert ladder[5] == recipes.report("fastresnet9", epochs=10, n_train=None, n_test=None, channels_last=True)
        assert ladder[0].batch_size == 512 and ladder[0].ema_every == 5 and ladder[0].optimizer == "sgd_velocity"
        assert all(step.bn_shards is None for step in ladder)  # main_fastresnet9.py: one GPU
    else:
        assert ladder[0].batch_size == 128 and ladder[0].scheduler == "plateau"
        # main.py's DataParallel splits plain BN; ghost BN keeps its ghost batches.
        assert [step.bn_shards for step in ladder] == [4, 4, 4, 4, None, None]


def test_earlier_ladders_keep_the_keys_of_their_stored_runs():
    """The reading before the report's code: the bag-of-tricks trainer, BN over whole batches (notebook 03's
    "earlier reading"); the committed GPU runs of that reading are found under these configs."""
    import pathlib

    from cifarnb.results import ResultStore

    quick = profiles.get("quick")
    store = ResultStore(pathlib.Path(__file__).resolve().parents[1] / "results")
    for recipe in fastresnet9.LADDER_RECIPES:
        for label, config in fastresnet9.earlier_trick_ladder(quick, recipe).items():
            assert store.load(config.replace(seed=0)) is not None, (recipe, label)
    assert store.load(fastresnet9.earlier_resnet18(quick).replace(seed=0)) is not None


def test_unknown_profile_and_overrides():
    with pytest.raises(ValueError, match="profile='x' is not one of smoke, quick, full"):
        profiles.get("x")
    with pytest.raises(ValueError, match="unknown profile setting"):
        profiles.get("smoke", zoo_epoch=3)


@pytest.mark.parametrize("arguments, message", [
    (dict(profile="nope"), "profile='nope'"),
    (dict(epochs=-1), "epochs=-1"),
    (dict(models=["resnet1000"]), "resnet1000"),
    (dict(seeds=[]), "seeds"),
    (dict(device="tpu"), "device='tpu'"),
    (dict(n_train=0), "n_train=0"),
])
def test_notebook_setup_rejects_bad_parameters(arguments, message, tmp_path):
    with pytest.raises(NotebookParameterError, match=message):
        setup("02_model_zoo", {"results_dir": str(tmp_path), "figures_dir": str(tmp_path), **arguments})


def test_notebook_setup_applies_overrides(tmp_path, capsys):
    session = setup("02_model_zoo", {"profile": "smoke", "seeds": [3], "results_dir": str(tmp_path),
                                     "figures_dir": str(tmp_path), "epochs": 4, "models": ["LeNet5"], "n_train": None})
    assert session.profile.zoo_epochs == 4 and session.profile.zoo_models == ("lenet5",)
    assert session.profile.n_train == profiles.get("smoke").n_train and session.seeds == (3,)
    assert session.section.NAME == "model_zoo"
    assert "profile 'smoke'" in capsys.readouterr().out


def test_notebook_setup_rejects_an_injected_parameter_the_notebook_does_not_declare(tmp_path):
    # What papermill injects after the parameters cell, as IPython's input history holds it.
    injected = '# Parameters\nprofile = "smoke"\nprofle = "quick"\n'
    namespace = {"In": ["", "profile = 'smoke'", injected], "profile": "smoke", "profle": "quick",
                 "results_dir": str(tmp_path), "figures_dir": str(tmp_path)}
    with pytest.raises(NotebookParameterError, match="unknown notebook parameter 'profle' for 02_model_zoo; valid: "):
        setup("02_model_zoo", namespace)
    # Gap and learning rates are notebook 05's, not notebook 02's.
    namespace["In"][-1] = '# Parameters\ngap = 3\n'
    with pytest.raises(NotebookParameterError, match="'gap'"):
        setup("02_model_zoo", {**namespace, "gap": 3})


def test_notebook_setup_takes_the_earlier_data_dir_as_data_root(tmp_path, capsys):
    namespace = {"In": ["", '# Parameters\ndata_dir = "/somewhere"\n'], "data_dir": "/somewhere",
                 "data_root": None, "results_dir": str(tmp_path), "figures_dir": str(tmp_path)}
    session = setup("04_feature_maps", namespace)
    assert session.profile.data_root == "/somewhere"
    assert "'data_dir' is now called 'data_root'" in capsys.readouterr().out
    # Every config the notebook builds from the profile reads that folder (an execution field: the key stays).
    from cifarnb.study.sections import feature_maps as feature_maps_section

    configs = feature_maps_section.feature_map_configs(session.profile, 0)
    assert {config.data_root for config in configs.values()} == {"/somewhere"}


def test_the_readme_profile_table_is_the_estimates():
    """The README's profile table is generated (`python -m cifarnb.study.estimate`): descriptions and seeds from
    profiles.py, hours from the estimate `cifarnb sweep --estimate` makes; it fails when the README drifts."""
    from pathlib import Path

    from cifarnb.results import ResultStore
    from cifarnb.study.estimate import profiles_table
    from cifarnb.study.probes import REFERENCE_CARD, Probe

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    start, end = readme.index("<!-- profiles:"), readme.index("<!-- /profiles -->")
    written = readme[start:end].split("\n", 1)[1].strip()
    generated = profiles_table(ResultStore(root / "results"), Probe.newest(REFERENCE_CARD, root / "benchmarks"))
    assert written == generated, "README.md's profile table drifted from the estimate; replace it with the " \
                                 f"output of `python -m cifarnb.study.estimate`:\n{generated}"
    for profile in profiles.PROFILES.values():  # the seeds are said once, in the profile
        assert f"| {', '.join(map(str, profile.seeds))} |" in written
