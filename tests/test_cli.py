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
    assert main(["train", "--data", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "download=True" in capsys.readouterr().err


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
