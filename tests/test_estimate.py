"""`cifarnb sweep --estimate` from a probe's measured efficiency."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import pytest

from cifarnb.cli import main
from cifarnb.results import RUN_FILE, ResultStore, Run, atomic_write_json
from cifarnb.study import profiles
from cifarnb.study.probes import model_family
from cifarnb.train import TrainConfig
from cifarnb.study.estimate import (GUESSED_FLOPS, SAFETY, SETUP_SECONDS, Probe, epoch_flops,
                                    estimate, estimate_lines, macs_per_image, training_flops)
from cifarnb.study.sections import model_zoo

SWEEP_MODE = "eager+cudnn_benchmark"  # how a sweep runs on CUDA (execution.sweep_execution)


def record(model: str, rate: float, mode: str = SWEEP_MODE, batch_size: int = 128, **values) -> dict:
    """One timed record as benchmarks/probe.py writes it (rate: sustained training FLOP/s)."""
    return {"section": "test", "label": model, "model": model, "family": model_family(model),
            "batch_size": batch_size, "mode": mode, "workers": 1, "images_per_second": 1000.0,
            "achieved_flops": rate, "mfu": rate / 989e12, "device": "NVIDIA H200", **values}


def write_probe(folder, records, date="2026-12-01", device="NVIDIA H200"):
    path = folder / f"probe-{device.lower().replace(' ', '-')}-{date}.json"
    path.write_text(json.dumps({"device": device, "peak_flops": 989e12, "records": records}))
    return path


@pytest.fixture
def smoke():
    return profiles.get("smoke", device="cpu")  # the zoo: lenet5, alexnet, resnet18


def test_measured_families_are_timed_at_the_probes_rate_and_the_rest_guessed(tmp_path, smoke):
    probe = Probe.read(write_probe(tmp_path, [
        record("lenet5", 2e12),
        record("resnet34", 50e12),  # the family's rate in the sweep's mode: used for resnet18
        record("resnet18", 400e12, mode="compiled+cuda_graphs"),  # the model itself, but not how a sweep runs
        record("lenet5", 9e12, workers=4),  # shared by 4 processes: not a run alone, never used
        {"section": "fixed_costs", "label": "evaluation", "model": "resnet18", "batch_size": 128},  # not a rate
    ]))
    result = estimate(["model_zoo"], smoke, ResultStore(tmp_path / "store"), "NVIDIA H200", probe=probe)["model_zoo"]
    assert result.models("probe") == ["lenet5", "resnet18"] and result.models("guessed") == ["alexnet"]
    expected = 0.0
    for model, rate in (("lenet5", 2e12), ("resnet18", 50e12), ("alexnet", None)):
        config = model_zoo.zoo_config(smoke, model)
        steps = math.ceil(config.n_train / config.batch_size)
        per_epoch = epoch_flops(config) / rate if rate else epoch_flops(config) / GUESSED_FLOPS["cuda"] + steps * 0.015
        expected += SETUP_SECONDS + SAFETY * config.epochs * per_epoch
    assert result.hours == pytest.approx(expected / 3600)


def test_the_same_model_in_the_sweeps_mode_wins_then_the_nearest_batch(tmp_path, smoke):
    probe = Probe.read(write_probe(tmp_path, [record("resnet34", 50e12), record("resnet18", 70e12, batch_size=512),
                                              record("resnet18", 60e12, batch_size=256)]))
    config = model_zoo.zoo_config(smoke, "resnet18").replace(batch_size=128)
    assert probe.rate(config, SWEEP_MODE)[0] == 60e12
    assert probe.rate(config.replace(batch_size=1024), SWEEP_MODE)[0] == 70e12
    assert probe.rate(model_zoo.zoo_config(smoke, "alexnet"), SWEEP_MODE) is None


def test_the_command_line_prints_sources_total_and_efficiency(tmp_path, smoke, capsys):
    path = write_probe(tmp_path, [record("lenet5", 2e12), record("resnet18", 170e12)])
    arguments = ["sweep", "--estimate", "NVIDIA H200", "--section", "model_zoo", "--profile", "smoke", "--results",
                 str(tmp_path / "store"), "--device", "cpu"]
    assert main([*arguments, "--probe", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    hours = estimate(["model_zoo"], smoke, ResultStore(tmp_path / "store"), "NVIDIA H200",
                     probe=Probe.read(path))["model_zoo"].hours
    assert out[0] == (f"model_zoo: {hours * 60:,.0f} GPU-minutes ({hours:,.2f} GPU-hours) on NVIDIA H200; measured "
                      "(the probe's efficiency): lenet5, resnet18; assumed, from FLOPs at 20 TFLOP/s and 15 ms a step: "
                      "alexnet")
    assert out[1] == f"total (smoke): {hours * 60:,.0f} GPU-minutes ({hours:,.2f} GPU-hours) on NVIDIA H200"
    assert out[2] == "every figure includes 15 s of set-up a run and x1.25 on its epochs (assumed margins)"
    assert out[3].startswith("what dominates: model_zoo, ") and "(100%)" in out[3]
    assert out[4] == (f"efficiency from {path.name} (a sweep there runs {SWEEP_MODE}): lenet: lenet5 at batch 128, "
                      f"{SWEEP_MODE}, 0.2% MFU; resnet: resnet18 at batch 128, {SWEEP_MODE}, 17.2% MFU")
    # Without a probe of the card, the estimate says its figures are the store's or assumed.
    lines = estimate_lines(["model_zoo"], smoke, ResultStore(tmp_path / "store"), "NVIDIA H200")
    assert lines[0].endswith("; assumed, from FLOPs at 20 TFLOP/s and 15 ms a step: alexnet, lenet5, resnet18")
    assert lines[-1].startswith("no probe of NVIDIA H200") and lines[-1].endswith("the store's or assumed")


def test_a_section_measured_on_the_card_says_so():
    """The store's H200 runs of notebook 03 are measured figures, and said to be (they used to go unmentioned)."""
    from cifarnb.study import profiles

    store = ResultStore(Path(__file__).resolve().parents[1] / "results")
    (line,) = estimate_lines(["fastresnet9"], profiles.get("quick"), store, "NVIDIA H200")[:1]
    assert "GPU-minutes" in line and "measured (the store's epochs on this device): " in line
    assert "assumed" not in line
    # The zoo's models nothing measured run at the FLOP bound at the MFU the store's H200 runs reach.
    zoo = estimate_lines(["model_zoo"], profiles.get("quick"), store, "NVIDIA H200")
    mfu = float(re.search(r"assumed, FLOPs at ([\d.]+)% MFU \(the median of the store's \d+ timings on this card\)",
                          zoo[0]).group(1))
    assert 0.5 < mfu < 50 and zoo[3].startswith("what dominates: model_zoo, ")


def test_the_assumed_mfu_is_the_median_of_the_cards_measured_timings(tmp_path):
    from cifarnb.study.estimate import Estimator, epoch_flops

    store = ResultStore(Path(__file__).resolve().parents[1] / "results")
    estimator = Estimator(store, "NVIDIA H200", "cuda", assume_store_mfu=True)
    rates = sorted(rate / 989e12 for (device, *_), rate in estimator.times.rates.items() if device == "NVIDIA H200")
    assert estimator.timings == len(rates) >= 1 and estimator.assumed_mfu == statistics.median(rates)
    wideresnet = TrainConfig(model="wideresnet28x10", batch_size=128)
    assert estimator.source(wideresnet)[0] == "guessed"  # nothing measured it on this card ...
    assert estimator.epoch_seconds(wideresnet) == epoch_flops(wideresnet) / (estimator.assumed_mfu * 989e12)
    assert Estimator(store, "NVIDIA H200", "cuda").assumed_mfu is None  # the budget keeps its slow guess


def test_the_newest_probe_of_the_card_is_found_and_a_bad_one_named(tmp_path):
    write_probe(tmp_path, [record("lenet5", 1e12)], date="2026-11-30")
    newest = write_probe(tmp_path, [record("lenet5", 2e12)], date="2026-12-02")
    write_probe(tmp_path, [record("lenet5", 3e12)], date="2026-12-09", device="NVIDIA H100 80GB HBM3")
    assert Probe.newest("NVIDIA H200", tmp_path).path == newest
    assert Probe.newest("NVIDIA A100-SXM4-80GB", tmp_path) is None
    bad = tmp_path / "probe-nvidia-h200-2026-12-03.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"probe-nvidia-h200-2026-12-03.json is not a probe written by "
                                         r"the probe benchmark \(JSONDecodeError"):
        Probe.newest("NVIDIA H200", tmp_path)


def test_every_model_has_a_family():
    assert {model_family(m) for m in ("resnet18", "resnet50", "fastresnet9", "resnet9", "geresnext29_8x64d")} == {
        "resnet", "resnet9", "geresnext"}
    with pytest.raises(ValueError, match="unknown model 'resnet1000'"):
        model_family("resnet1000")


def test_the_estimate_takes_short_card_names_and_refuses_unknown_ones(tmp_path, capsys):
    """`--estimate H200` is the NVIDIA H200's estimate (it used to find none of the store's H200 timings and guess
    every figure); a card nobody knows is one line naming the known ones."""
    from cifarnb.study.probes import resolve_card

    assert resolve_card("H200") == resolve_card("nvidia h200") == resolve_card("NVIDIA H200") == "NVIDIA H200"
    assert resolve_card("A100") == "NVIDIA A100-SXM4-80GB" and resolve_card("CPU") == "cpu"
    assert resolve_card("nvidia rtx 6000 ada", {"NVIDIA RTX 6000 Ada"}) == "NVIDIA RTX 6000 Ada"  # a store's card
    with pytest.raises(ValueError, match="unknown card 'B300' for --estimate; known: NVIDIA H200 \\(H200\\)"):
        resolve_card("B300")
    arguments = ["sweep", "--section", "fastresnet9", "--profile", "quick", "--results",
                 str(Path(__file__).resolve().parents[1] / "results")]
    assert main([*arguments, "--estimate", "H200"]) == 0
    short = capsys.readouterr().out
    assert main([*arguments, "--estimate", "NVIDIA H200"]) == 0
    assert capsys.readouterr().out == short and "GPU-hours) on NVIDIA H200" in short
    assert main([*arguments, "--estimate", "B300"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) <= 2 and "unknown card 'B300'" in error[-1]


def test_a_cpu_probe_times_each_run_in_the_mode_decide_chooses_there(tmp_path, monkeypatch):
    """benchmarks/cpu_speed.py's records: --estimate cpu --probe FILE says how long a section takes on this CPU, at
    the rate of the path decide() takes for each run (compiled for a long run on a CPU with native bf16); a model
    the probe did not time runs at the median rate of the paths it chose."""
    from cifarnb.train import execution

    monkeypatch.setattr(execution, "cpu_has_native_bf16", lambda: True)
    quick = profiles.get("quick", device="cpu")
    probe = Probe.read(write_probe(tmp_path, [
        record("resnet18", 1e10, mode="eager", path="fp32_eager", precision="fp32"),
        record("resnet18", 3e10, mode="compiled", path="chosen", precision="bf16"),
        record("fastresnet9", 5e10, mode="compiled", path="chosen", precision="bf16"),
    ], device="cpu"))
    result = estimate(["model_zoo"], quick, ResultStore(tmp_path / "store"), "cpu", probe=probe)["model_zoo"]
    assert "resnet18" in result.models("probe") and "lenet5" in result.models("guessed")
    assert "40 GFLOP/s" in result.assumed  # the median of the chosen paths' 3e10 and 5e10
    config = model_zoo.zoo_config(quick, "resnet18")
    assert result.probe_records[("resnet18", 128, "compiled")]["achieved_flops"] == 3e10
    lenet = model_zoo.zoo_config(quick, "lenet5")
    from cifarnb.study.estimate import Estimator

    estimator = Estimator(ResultStore(tmp_path / "store"), "cpu", "cpu", probe)
    assert estimator.mode_of(config) == "compiled"
    assert estimator.mode_of(config.replace(epochs=1, n_train=256)) == "eager"  # too short to repay a compile
    assert estimator.epoch_seconds(config) == pytest.approx(epoch_flops(config) / 3e10)  # the chosen path's rate
    assert estimator.epoch_seconds(lenet) == pytest.approx(epoch_flops(lenet) / 4e10)  # the median, assumed
    lines = estimate_lines(["model_zoo"], quick, ResultStore(tmp_path / "store"), "cpu", probe=probe)
    assert any(line.startswith("efficiency from probe-cpu-2026-12-01.json") for line in lines)


def test_evaluations_every_few_steps_count_in_an_epochs_flops():
    """VGG-A's accuracy runs evaluate every 100 steps: about 4 more passes over the test set an epoch."""
    plain = TrainConfig(model="vgg_a", batch_size=128)
    one_pass = 2 * macs_per_image(plain) * 10_000
    assert epoch_flops(plain) == pytest.approx(training_flops(plain) + one_pass)
    stepped = plain.replace(eval_every_steps=100)
    assert epoch_flops(stepped) == pytest.approx(training_flops(plain) + (1 + 391 / 100) * one_pass)


def test_a_model_not_timed_runs_at_its_familys_stored_rate_on_all_the_data(tmp_path):
    """VGG-A + BN on a CPU: VGG-A's stored epochs give the vgg family's FLOP/s, which times it (it had been guessed
    at the CPU probe's median rate); a subset's run (mostly fixed costs) gives none."""
    from cifarnb.study.estimate import Estimator, EpochTimes

    store = ResultStore(tmp_path)
    vgg_a = TrainConfig(model="vgg_a", epochs=1, batch_size=128, eval_every_steps=100)
    row = {"epoch": 1, "train_loss": 1.0, "train_acc": 60.0, "lr": 0.1, "test_loss": 1.0, "test_acc": 60.0,
           "seconds": 150.0, "eval_seconds": 10.0, "step_evals": [
               {"step": s, "test_loss": 1.0, "test_acc": 60.0, "seconds": 10.0} for s in (100, 200, 300)]}
    for config, history in ((vgg_a, [row]), (vgg_a.replace(n_train=512), [{**row, "seconds": 90.0}])):
        store_run(store, config, history, "cpu")
    times = EpochTimes.read(store)
    assert times.per_epoch(vgg_a, "cpu") == 190.0  # training, the three evaluations within, the one at its end
    assert times.family_rate("cpu", "vgg") == epoch_flops(vgg_a) / 190.0
    assert times.family_rate("cpu", "resnet") is None and times.family_rate("NVIDIA H200", "vgg") is None
    with_bn = vgg_a.replace(model="vgg_a_bn")
    estimator = Estimator(store, "cpu", "cpu")
    assert estimator.source(with_bn)[0] == "store"
    assert estimator.epoch_seconds(with_bn) == pytest.approx(epoch_flops(with_bn) * 190.0 / epoch_flops(vgg_a))
    assert estimator.source(TrainConfig(model="lenet5"))[0] == "guessed"  # no lenet run stored here


def test_a_cards_mfu_counts_each_timings_own_evaluations(tmp_path):
    """The MFU a card's stored epochs reach is their runs' own epoch FLOPs over their seconds: VGG-A's evaluations
    every 100 steps count (a bare config of the same model and batch would leave a quarter of them out)."""
    from cifarnb.study.estimate import Estimator

    store = ResultStore(tmp_path)
    vgg_a = TrainConfig(model="vgg_a", epochs=1, batch_size=128, eval_every_steps=100)
    row = {"epoch": 1, "train_loss": 1.0, "train_acc": 60.0, "lr": 0.1, "test_loss": 1.0, "test_acc": 60.0,
           "seconds": 4.0, "eval_seconds": 1.0}
    store_run(store, vgg_a, [row], "NVIDIA H200")
    estimator = Estimator(store, "NVIDIA H200", "cuda", assume_store_mfu=True)
    assert estimator.timings == 1
    assert estimator.assumed_mfu == pytest.approx(epoch_flops(vgg_a) / 5.0 / 989e12)
    assert estimator.assumed_mfu > epoch_flops(TrainConfig(model="vgg_a", batch_size=128)) / 5.0 / 989e12


def store_run(store: ResultStore, config: TrainConfig, history: list[dict], device: str) -> None:
    """A finished run of ``config`` on ``device`` in ``store``, as fit would leave it."""
    store.folder(config).mkdir(parents=True)
    atomic_write_json(store.folder(config) / RUN_FILE, Run(config, history, "finished", {"device": device}).to_json())
