import dataclasses
import json
import re
from pathlib import Path

import pytest

from cifarnb.cli import build_parser, main

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_help_lists_both_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "train" in out and "report" in out


def test_train_help_exposes_config_fields(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--model", "--epochs", "--weight-decay", "--scheduler", "--label-smoothing", "--tta-flip",
                 "--model-options", "--n-train", "--loader", "--seed"):
        assert flag in out


def test_the_help_imports_no_torch():
    """`cifarnb --help`, `train --help`, `sweep --help` answer without torch, pandas or the study's sections (a fresh
    interpreter: this one has imported them already); benchmarks/cli_speed.py times them."""
    import subprocess
    import sys

    heavy = ("torch", "torchvision", "pandas", "numpy", "cifarnb.study.sections", "cifarnb.results")
    code = ("import sys, contextlib, io\n"
            "from cifarnb.cli import build_parser\n"
            "parser = build_parser()\n"
            "for words in ([], ['train'], ['sweep'], ['merge'], ['report']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        parser.parse_args([*words, '--help'])\n"
            f"print(' '.join(name for name in {heavy!r} if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""  # the heavy modules it imported


@pytest.mark.parametrize("command, usage", [("train", "[OPTIONS]"), ("sweep", "[OPTIONS]"), ("report", "[OPTIONS]"),
                                            ("merge", "ARCHIVE [OPTIONS]")])
def test_every_command_help_reads_alike(command, usage, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"usage: cifarnb {command} {usage}"
    assert "--results RESULTS" in out and "(default: " in out


def test_the_torch_free_names_are_the_implemented_ones():
    import torch

    from cifarnb import loaders, names
    from cifarnb.models import layers, list_models, model_family
    from cifarnb.study import section_index, sections

    assert list(names.MODELS) == list_models()
    assert {name: model_family(name) for name in list_models()} == names.MODEL_FAMILIES
    assert names.ACTIVATIONS == tuple(layers._ACTIVATIONS)
    images, labels = torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    # Each name is a loader make_loader builds, the tensor loader drawing its crops in each named way (the
    # torchvision pipeline augments per image only).
    cases = [("torchvision", "per_image"), *(("tensor", way) for way in names.AUGMENTATIONS)]
    assert {kind for kind, _ in cases} == set(names.LOADERS)
    for kind, augmentation in cases:
        loader = loaders.make_loader(kind, images, labels, 2, train=True, augmentation=augmentation, num_workers=0)
        images_seen, _ = next(iter(loader.batches()))
        assert images_seen.shape == (2, 3, 32, 32)
    assert section_index.SECTION_NAMES == tuple(sections.SECTIONS)


def test_train_runs_stores_and_reloads(tmp_path, cifar_root, capsys):
    args = ["train", "--data", str(cifar_root), "--results", str(tmp_path), "--quiet", "--model", "lenet5",
            "--epochs", "2", "--batch-size", "16", "--n-train", "32", "--n-test", "32", "--device", "cpu",
            "--model-options", "activation=gelu"]
    assert main(args) == 0
    first = capsys.readouterr().out
    (run_file,) = tmp_path.glob("lenet5-*/run.json")
    stored = json.loads(run_file.read_text())
    assert stored["config"]["model_options"] == {"activation": "gelu"} and len(stored["history"]) == 2
    assert first.strip().endswith(f"finished (trained): {run_file.parent}")
    assert main(args) == 0
    second = capsys.readouterr().out  # the second call loads the stored run, and says so
    assert second == first.replace("(trained)", "(loaded)")
    assert main([*args[:-4], "--model", "LeNet5", *args[-4:]]) == 0  # one run whatever the letter case
    assert "(loaded)" in capsys.readouterr().out and len(list(tmp_path.glob("lenet5-*/run.json"))) == 1


def test_bad_value_is_a_one_line_error(capsys):
    assert main(["train", "--optimizer", "rmsprop"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cifarnb: error: optimizer='rmsprop'") and "\n" not in err


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--data-root", str(tmp_path), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"error: CIFAR-10 not found at {tmp_path / 'cifar-10-batches-py'}; fetch it with --download, "
                        "or point --data-root (or CIFARNB_DATA) at a folder that contains cifar-10-batches-py/")
    assert "download=True" not in err and "\n" not in err  # the command line's words, not Python's


def test_report_rejects_unknown_profile(capsys):
    assert main(["report", "--profile", "huge"]) == 2
    assert "profile='huge'" in capsys.readouterr().err


def test_parser_flags_round_trip_booleans():
    args = build_parser().parse_args(["train", "--tta-flip", "--no-channels-last"])
    assert args.tta_flip is True and args.channels_last is False


def test_help_says_each_default_once_and_lists_the_choices(capsys):
    from cifarnb.models import list_models
    from cifarnb.train.config import LOSSES, OPTIMIZERS, SCHEDULERS

    for command in ("train", "sweep", "report"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())  # help wraps lines anywhere
        assert out.count("(default:") == len(re.findall(r"\(default: [^)]*\)", out))
        assert not re.search(r"\(default: ([^)]*)\) \(default: ", out)
        if command == "train":
            joined = out.replace("- ", "-").replace(" ", "")
            for name in (*list_models(), *OPTIMIZERS, *SCHEDULERS, *LOSSES):
                assert name.replace(" ", "") in joined, name


@pytest.mark.parametrize("argv, flag", [
    (["train", "--epochs", "abc"], "--epochs"),
    (["train", "--lr", "fast"], "--lr"),
    (["train", "--n-train", "many"], "--n-train"),
    (["train", "--seed", "-1"], "--seed"),
    (["sweep", "--seeds", "0", "-2"], "--seeds"),
    (["sweep", "--workers", "two"], "--workers"),
])
def test_bad_numbers_and_negative_seeds_are_usage_errors(argv, flag, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert error.startswith(f"cifarnb {argv[0]}: error: argument {flag}")


def test_negative_seed_rejected_by_config_and_notebook(tmp_path):
    from cifarnb.study.notebook import NotebookParameterError, setup
    from cifarnb.train import TrainConfig

    for field in ("seed", "subset_seed"):
        with pytest.raises(ValueError, match=f"{field}=-1 must be a whole number >= 0"):
            TrainConfig(**{field: -1})
    with pytest.raises(NotebookParameterError, match="non-negative"):
        setup("01_optimize_resnet18", {"seeds": [0, -1], "results_dir": str(tmp_path), "figures_dir": str(tmp_path)})


def test_report_with_another_store_leaves_committed_figures_alone(tmp_path, monkeypatch):
    import papermill

    from cifarnb.study.render import run_report

    seen = []

    def fake_execute(source, target, parameters, **kwargs):  # records what each notebook would be given
        seen.append(parameters)
        Path(target).write_text(Path(source).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    run_report(output=tmp_path / "out", results=str(tmp_path / "store"), only=["01"], log=lambda *a, **k: None)
    assert seen[-1]["figures_dir"] == str((tmp_path / "out" / "figures").resolve())
    run_report(output=tmp_path / "out", results=str(tmp_path / "store"), figures=str(tmp_path / "figs"), only=["01"],
               log=lambda *a, **k: None)
    assert seen[-1]["figures_dir"] == str((tmp_path / "figs").resolve())
    run_report(output=tmp_path / "out", only=["01"], log=lambda *a, **k: None)
    assert "figures_dir" not in seen[-1]  # the committed store renders into the committed figures/


def test_report_by_default_renders_each_notebook_as_committed(tmp_path, monkeypatch):
    import papermill

    from cifarnb.study.render import run_report

    seen = {}

    def fake_execute(source, target, parameters, **kwargs):
        seen[Path(source).name] = parameters
        Path(target).write_text(Path(source).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    lines = []
    html = run_report(output=tmp_path / "out", only=["01", "03"], log=lambda line, **k: lines.append(line))
    committed = {name: json.loads((NOTEBOOKS / name).read_text())["metadata"]["papermill"]["parameters"]
                 for name in seen}
    for name, parameters in seen.items():  # the notebook's own profile and seeds, plus the execution fields
        assert {k: parameters[k] for k in committed[name]} == committed[name]
        assert parameters["device"] == "auto"
    profile_03 = committed["03_fastresnet9.ipynb"]["profile"]
    assert any(line.startswith(f"[2/2] 03_fastresnet9.ipynb (profile {profile_03}") for line in lines)
    run_report(profile="smoke", output=tmp_path / "out", only=["03"], log=lambda *a, **k: None)
    assert seen["03_fastresnet9.ipynb"]["profile"] == "smoke" and "seeds" not in seen["03_fastresnet9.ipynb"]
    assert html.exists()


def test_report_as_committed_needs_papermill_metadata(tmp_path, capsys):
    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), folder / "01_bare.ipynb")
    assert main(["report", "--notebooks", str(folder), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "01_bare.ipynb holds no papermill parameters" in err and "--profile" in err and len(err.splitlines()) == 1


def test_every_option_says_what_it_does_and_its_default():
    import argparse

    from cifarnb.train import TrainConfig

    # Each field's help lives with the field (its metadata), and every field has one.
    assert not [f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("help", "").strip()]
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in commands.choices.items():
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            described = re.sub(r"\(default: [^)]*\)", "", action.help or "").strip()
            assert len(described) > 10, (command, action.option_strings)
            if action.nargs != 0 and action.option_strings:  # an option taking a value: its default is shown
                assert "(default: %(default)s)" in action.help or "(default: " in action.help, \
                    (command, action.option_strings)


def test_version_is_printed(capsys):
    from cifarnb import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"cifarnb {__version__}"


@pytest.mark.parametrize("argv, error", [
    (["train", "--epochs", "abc"], "cifarnb train: error: argument --epochs: invalid int value: 'abc'"),
    (["train", "--lr-knots", "[[0], [2, 1]]"], "cifarnb train: error: argument --lr-knots: '[[0], [2, 1]]' is not a "
                                              "JSON list of [epoch, factor] pairs of numbers"),
    (["train", "--lr-knots", "fast"], "cifarnb train: error: argument --lr-knots: 'fast' is not a JSON list"),
    (["sweep", "--seeds", "abc"], "cifarnb sweep: error: argument --seeds: seed 'abc' is not a whole number >= 0"),
    (["report", "--bogus"], "cifarnb report: error: unrecognized arguments: --bogus"),
])
def test_a_usage_error_is_one_usage_line_and_the_error(argv, error, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    usage, message = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and usage == f"usage: cifarnb {argv[0]} [OPTIONS] (see cifarnb {argv[0]} --help)"
    assert message.startswith(error)


def test_a_stored_run_is_printed_without_reading_the_data_set(tmp_path, cifar_root, capsys, monkeypatch):
    from cifarnb import data

    args = ["train", "--data-root", str(cifar_root), "--results", str(tmp_path), "--quiet", "--model", "lenet5",
            "--epochs", "1", "--batch-size", "16", "--n-train", "32", "--n-test", "32", "--device", "cpu"]
    assert main(args) == 0
    trained = capsys.readouterr().out

    def no_data(*args, **kwargs):
        raise AssertionError("printing a stored run read the data set")

    monkeypatch.setattr(data, "load_cifar10", no_data)
    monkeypatch.setattr(data, "_load_whole", no_data)
    assert main(args) == 0
    assert capsys.readouterr().out == trained.replace("(trained)", "(loaded)")


def test_results_pointing_at_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "results.txt").write_text("a file")
    assert main(["train", "--results", str(tmp_path / "results.txt"), "--n-train", "32"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error == (f"cifarnb: error: results store {tmp_path / 'results.txt'} is a file, not a folder; give a "
                     "folder (a missing one is created)")


def test_download_without_a_network_says_so_and_how_to_place_the_data(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["train", "--download", "--data-root", str(tmp_path / "data"), "--results", str(tmp_path)]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("cifarnb: error: could not download CIFAR-10 from https://") and "network" in error
    assert f"unpack it into {tmp_path / 'data'} (it holds cifar-10-batches-py/)" in error


def test_a_run_tried_without_results_goes_to_the_scratch_store_and_leaves_no_claim(tmp_path, cifar_root, capsys,
                                                                                monkeypatch):
    """The README's trial command adds nothing to the committed results/: without --results (or
    $CIFARNB_RESULTS) a run goes to ./scratch-results, which git ignores; no claim file is left behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CIFARNB_RESULTS", raising=False)
    args = ["train", "--data", str(cifar_root), "--quiet", "--model", "lenet5", "--epochs", "1", "--batch-size",
            "16", "--n-train", "32", "--n-test", "32", "--device", "cpu"]
    assert main(args) == 0
    (run_file,) = (tmp_path / "scratch-results").glob("lenet5-*/run.json")
    assert not (tmp_path / "results").exists()
    assert not list((tmp_path / "scratch-results").glob("*.claim"))
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().splitlines()
    assert "/scratch-results/" in ignored


def _config(*words):
    from cifarnb.cli import _config_from

    return _config_from(build_parser().parse_args(["train", *words]))


def test_train_recipe_report_stores_the_key_the_sweep_stores_for_every_model():
    """`cifarnb train --recipe report --model M` is the sweep's run of M at the full profile (the report's
    settings), the same key: each zoo model as the report's code builds it (WideResNet's dropout and shortcut,
    He-normal DenseNet100-BC and GeResNeXt29), ResNet9 and FastResNet9 as Tables 8-9 train them."""
    from cifarnb.study import profiles
    from cifarnb.study.sections.fastresnet9 import resnet9_configs
    from cifarnb.study.sections.model_zoo import zoo_config

    full = profiles.get("full")
    sweep = {model: zoo_config(full, model) for model in profiles.ZOO_MODELS}
    tables_8_9 = resnet9_configs(full)
    sweep.update(resnet9=tables_8_9["ResNet9"], fastresnet9=tables_8_9["FastResNet9"])
    for model, config in sweep.items():
        assert _config("--recipe", "report", "--model", model).key() == config.key(), model
    assert _config("--recipe", "report", "--model", "WideResNet16x8").model_options == {
        "dropout": 0.5, "projection_input": "block_input"}
    # Without a recipe: the library's defaults, another run (the help says so).
    assert _config("--model", "wideresnet16x8").key() != sweep["wideresnet16x8"].key()


def test_flags_given_override_the_recipe_and_the_others_keep_its_values():
    config = _config("--recipe", "report", "--model", "wideresnet16x8", "--epochs", "3", "--model-options",
                     "dropout=0.3", "--seed", "2")
    assert (config.epochs, config.seed, config.lr, config.bn_shards) == (3, 2, 0.1, 4)
    assert config.model_options == {"dropout": 0.3, "projection_input": "block_input"}  # added to the recipe's
    fast = _config("--recipe", "fast", "--scheduler", "step")  # the recipe's piecewise knots go with its schedule
    assert (fast.model, fast.scheduler, fast.lr_knots, fast.step_size, fast.step_gamma) == (
        "fastresnet9", "step", None, 5, 0.5)
    plain = _config()  # no recipe: TrainConfig's defaults, as before
    assert plain.key() == _config("--recipe", "report", "--model", "resnet18").replace(
        **{name: getattr(plain, name) for name in ("epochs", "lr", "bn_shards")}).key()
    assert (_config("--scheduler", "step").step_size, _config("--scheduler", "step", "--step-size", "7").step_size) \
        == (5, 7)


def test_train_help_names_each_recipe_and_what_runs_without_one(capsys):
    from cifarnb.study import recipes

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert set(recipes.SUMMARIES) == set(recipes.RECIPES)
    for name in recipes.list_recipes():
        assert f"{name}: {' '.join(recipes.SUMMARIES[name].split())}" in out
    assert "(default: none: the library's TrainConfig defaults each flag shows" in out
