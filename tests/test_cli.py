import json

import pytest

from cifarnb.cli import build_parser, main


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
    assert main(args) == 0
    assert capsys.readouterr().out == first  # the second call loads the stored run


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
