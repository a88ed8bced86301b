"""Landscape measurements: closed forms on a quadratic, probes that leave training untouched, table shapes."""

from __future__ import annotations

import copy
import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cifarnb import landscape, models
from cifarnb.loaders import TensorLoader

TINY_TRAIN = 64
TINY_BATCH = 16


@pytest.fixture(scope="module")
def tiny_cifar(cifar):
    return cifar.subset(n_train=TINY_TRAIN, n_test=10)


class Quadratic(nn.Module):
    """f(w) = 1/2 w^T A w, whatever the inputs; the loss function passes the output through."""

    def __init__(self, matrix: torch.Tensor, start: torch.Tensor):
        super().__init__()
        self.register_buffer("matrix", matrix)
        self.w = nn.Parameter(start.clone())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.w @ self.matrix @ self.w


def _passthrough(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return output


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    state.update({f"{n}.grad": p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    return state


def _assert_same(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name


def _probed(*arguments) -> dict:
    """landscape.probe's three tensors as plain numbers."""
    losses, distances, beta = landscape.probe(*arguments)
    return {"losses": losses.tolist(), "grad_distances": distances.tolist(), "beta": beta.item()}


def test_probe_matches_closed_form_on_a_quadratic():
    generator = torch.Generator().manual_seed(0)
    basis = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    matrix = basis @ basis.T + 0.5 * torch.eye(6, dtype=torch.float64)  # symmetric positive definite
    w = torch.randn(6, generator=generator, dtype=torch.float64)
    model = Quadratic(matrix, w)
    etas = (0.01, 0.05, 0.2)

    result = _probed(model, _passthrough, torch.zeros(1), torch.zeros(1), etas)

    g = matrix @ w
    expected_losses = [0.5 * (w - e * g) @ matrix @ (w - e * g) for e in etas]
    expected_distances = [torch.linalg.norm(e * matrix @ g) for e in etas]
    expected_beta = torch.linalg.norm(matrix @ g) / torch.linalg.norm(g)
    assert result["losses"] == pytest.approx([float(v) for v in expected_losses], rel=1e-6, abs=1e-6)
    assert result["grad_distances"] == pytest.approx([float(v) for v in expected_distances], rel=1e-6, abs=1e-6)
    assert result["beta"] == pytest.approx(float(expected_beta), rel=1e-6, abs=1e-6)

    reused = _probed(model, _passthrough, torch.zeros(1), torch.zeros(1), etas, [g])
    for key in ("losses", "grad_distances", "beta"):
        assert reused[key] == pytest.approx(result[key], rel=1e-12)


def test_probe_leaves_model_grads_buffers_and_rng_untouched():
    torch.manual_seed(0)
    model = models.build("vgg_a_bn").train()
    inputs, targets = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    F.cross_entropy(model(inputs), targets).backward()  # so there are .grad and moved running stats to keep
    before = _snapshot(model)
    rng_before = torch.get_rng_state()

    result = _probed(model, F.cross_entropy, inputs, targets, (0.05, 0.4))

    _assert_same(before, _snapshot(model))
    assert torch.equal(rng_before, torch.get_rng_state())
    assert model.training
    assert len(result["losses"]) == len(result["grad_distances"]) == 2
    assert all(math.isfinite(v) for v in [*result["losses"], *result["grad_distances"], result["beta"]])


def test_probe_restores_rng_drawn_by_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    inputs, targets = torch.randn(6, 5), torch.randint(0, 3, (6,))
    rng_before = torch.get_rng_state()
    landscape.probe(model, F.cross_entropy, inputs, targets, (0.1, 0.2))
    assert torch.equal(rng_before, torch.get_rng_state())


def test_one_step_method_averages_windows_and_samples_gradient_changes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    reference = copy.deepcopy(model)
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(7)]
    lr, gap = 0.1, 3

    frame = landscape.measure_one_step_quantities(model, batches, lr, gap)

    optimizer = torch.optim.SGD(reference.parameters(), lr=lr)
    losses, gradients, last_gradients, last_weights = [], [], [], []
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(reference(inputs), targets)
        loss.backward()
        losses.append(loss.item())
        gradients.append(torch.cat([p.grad.flatten() for p in reference.parameters()]))
        last_gradients.append(reference[2].weight.grad.clone())  # the template's classifier[-1].weight
        last_weights.append(reference[2].weight.detach().clone())
        optimizer.step()
    table = frame.set_index(["step", "quantity"])["value"]
    assert sorted(set(frame["step"])) == [2, 5]  # the trailing partial window (step 6) is dropped
    for last in (2, 5):
        distance = torch.linalg.norm(gradients[last] - gradients[last - 1]).item()
        assert table[(last, "loss")] == pytest.approx(sum(losses[last - 2 : last + 1]) / 3, rel=1e-6)
        assert table[(last, "grad_distance")] == pytest.approx(distance, rel=1e-5)
        beta = distance / (lr * torch.linalg.norm(gradients[last - 1]).item())
        assert table[(last, "beta")] == pytest.approx(beta, rel=1e-5)
        # The last linear layer's weight alone, beta = ||dg|| / (||dw|| + 1e-3).
        last_distance = torch.linalg.norm(last_gradients[last] - last_gradients[last - 1]).item()
        moved = torch.linalg.norm(last_weights[last] - last_weights[last - 1]).item()
        assert table[(last, "grad_distance_last_layer")] == pytest.approx(last_distance, rel=1e-5)
        assert table[(last, "beta_last_layer")] == pytest.approx(last_distance / (moved + 1e-3), rel=1e-5)


def test_report_method_samples_the_last_layer_every_gap_steps_as_its_code_does():
    """VGG_Loss_Landscape.py: after each step, every gap-th iteration, keep classifier[-1]'s gradient and weight;
    distance and beta between consecutive samples (beta = ||dG|| / (||dW|| + 1e-3)), loss = the window's mean."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    reference = copy.deepcopy(model)
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(10)]
    lr, gap = 0.1, 3

    frame = landscape.measure_report_quantities(model, batches, lr, gap)

    # The code's loop, written out.
    optimizer = torch.optim.SGD(reference.parameters(), lr=lr)
    loss_sum, losses, distances, betas = 0.0, [], [], []
    past_grad = past_weight = None
    for iteration, (inputs, targets) in enumerate(batches, start=1):
        optimizer.zero_grad()
        loss = F.cross_entropy(reference(inputs), targets)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item()
        if iteration % gap == 0:
            grad_now, weight_now = reference[2].weight.grad.clone(), reference[2].weight.detach().clone()
            if past_grad is not None:
                distance = torch.dist(grad_now, past_grad).item()
                distances.append(distance)
                betas.append(distance / (torch.dist(weight_now, past_weight).item() + 1e-3))
            past_grad, past_weight = grad_now, weight_now
            losses.append(loss_sum / gap)
            loss_sum = 0.0
    rows = lambda quantity: frame.loc[frame["quantity"] == quantity].sort_values("step")  # noqa: E731
    assert rows("loss")["step"].tolist() == [2, 5, 8] and rows("grad_distance")["step"].tolist() == [5, 8]
    assert rows("loss")["value"].tolist() == pytest.approx(losses, rel=1e-6)
    assert rows("grad_distance")["value"].tolist() == pytest.approx(distances, rel=1e-5)
    assert rows("beta")["value"].tolist() == pytest.approx(betas, rel=1e-5)
    assert set(frame["quantity"]) == set(landscape.REPORT_QUANTITIES)


def test_report_method_trains_the_rates_in_sequence_from_one_seed(tiny_cifar):
    """Each rate its own initialisation (the next draws of one seeded RNG), and the same table every time."""
    config = landscape.LandscapeConfig(learning_rates=(0.05, 0.05), epochs=1, batch_size=TINY_BATCH, gap=2,
                                       device="cpu", n_train=TINY_TRAIN, seed=2023)
    first = landscape.run_report_method(config, "vgg_a_bn", tiny_cifar)
    again = landscape.run_report_method(config, "vgg_a_bn", tiny_cifar)
    assert first.equals(again)
    halves = [part["value"].tolist() for _, part in first.groupby(first.index // (len(first) // 2))]
    assert halves[0] != halves[1]  # same rate twice, different initial weights and batch order


def test_probing_every_step_keeps_the_trajectory_bit_for_bit(tiny_cifar):
    torch.manual_seed(0)
    model = models.build("vgg_a_bn").train()
    reference = copy.deepcopy(model)
    loader = TensorLoader(tiny_cifar.x_train, tiny_cifar.y_train, TINY_BATCH, train=True, device="cpu", seed=0)
    batches = list(loader.batches(0))
    lr, etas = 0.1, (0.05, 0.4)

    frame = landscape.measure_paper_quantities(model, batches, lr, etas, probe_every=1)

    optimizer = torch.optim.SGD(reference.parameters(), lr=lr)
    losses = []
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(reference(inputs), targets)
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
    _assert_same(
        {k: v.clone() for k, v in reference.state_dict().items()},
        {k: v.clone() for k, v in model.state_dict().items()},
    )
    assert frame.loc[frame["quantity"] == "train_loss", "value"].tolist() == losses

    steps = len(batches)
    counts = frame["quantity"].value_counts()
    assert counts["loss"] == counts["grad_distance"] == steps * len(etas)
    assert counts["beta"] == counts["train_loss"] == steps
    assert not frame["value"].isna().any()


@pytest.fixture(scope="module")
def report_frame(tiny_cifar):
    config = landscape.LandscapeConfig(
        learning_rates=(0.05, 0.1), epochs=2, batch_size=TINY_BATCH, gap=2, device="cpu", n_train=TINY_TRAIN
    )
    # Every model at every learning rate, as the one-step table sweeps them.
    return pd.concat([landscape.run_one_step_method(config, name, lr, tiny_cifar)
                      for name in config.models for lr in config.learning_rates], ignore_index=True)


def test_one_step_sweep_table_shape_and_band(report_frame):
    assert list(report_frame.columns) == list(landscape.REPORT_COLUMNS)
    assert not report_frame["value"].isna().any()
    steps_per_run = 2 * TINY_TRAIN // TINY_BATCH
    windows = steps_per_run // 2
    # 2 models x 2 lrs x windows x (loss, then grad_distance and beta on all parameters and on the last layer)
    assert len(report_frame) == 2 * 2 * windows * 5
    assert set(report_frame["step"]) == {2 * k + 1 for k in range(windows)}

    band = landscape.min_max_band(report_frame)
    assert list(band.columns) == ["model", "step", "quantity", "min", "max"]
    assert len(band) == 2 * windows * 5
    assert (band["min"] <= band["max"]).all()


def test_paper_method_run_table(tiny_cifar):
    config = landscape.LandscapeConfig(learning_rates=(0.1,), epochs=1, batch_size=TINY_BATCH, gap=30, device="cpu",
                                       n_train=TINY_TRAIN)
    frame = landscape.run_paper_method(config, "vgg_a", probe_every=3, etas=(0.05, 0.4), data=tiny_cifar)
    assert list(frame.columns) == list(landscape.PAPER_COLUMNS)
    assert set(frame.loc[frame["quantity"] == "beta", "step"]) == {0, 3}
    assert set(frame.loc[frame["quantity"] == "loss", "eta"]) == {0.05, 0.4}
    assert not frame["value"].isna().any()


def test_paper_etas_span_half_to_four_learning_rates_capped_at_0_4():
    etas = landscape.paper_etas(0.1)
    assert etas[0] == pytest.approx(0.05) and etas[-1] == pytest.approx(0.4)
    assert landscape.paper_etas(0.15)[-1] == pytest.approx(0.4)
    assert list(etas) == sorted(etas) and len(etas) == landscape.PAPER_ETA_COUNT


def test_band_plots_return_axes(report_frame):
    import matplotlib.pyplot as plt

    from cifarnb.plots import plot_bands

    axes = plot_bands(report_frame)
    assert len(axes) == 3
    assert axes[0].get_xlabel() == "training step"
    assert len(axes[0].collections) == 2  # one shaded band per model
    plt.close("all")


def test_band_figure_draws_one_panel_per_quantity_with_the_plateau_and_log_scale(report_frame):
    import math

    import matplotlib.pyplot as plt

    from cifarnb.plots import band_figure

    two = band_figure(report_frame, "both", [(landscape.GRAD_DISTANCE, "all"), (landscape.BETA, "last")], log_y=True)
    assert [ax.get_title() for ax in two.axes] == ["all", "last"] and two._suptitle.get_text() == "both"
    assert all(ax.get_yscale() == "log" for ax in two.axes)
    one = band_figure(report_frame, "loss", [(landscape.LOSS, None)], plateau=True)
    (ax,) = one.axes
    assert ax.get_title() == "loss" and ax.get_yscale() == "linear"
    assert any(list(line.get_ydata()) == [math.log(10)] * 2 for line in ax.get_lines())  # the ln 10 line
    # The report's code draws its beta figure as the maximum over learning rates: one line per model, no band.
    (ax,) = band_figure(report_frame, "beta", [(landscape.BETA, None)], envelope="max").axes
    band = landscape.min_max_band(report_frame[report_frame["quantity"] == landscape.BETA])
    assert not ax.collections and len(ax.get_lines()) == 2
    assert list(ax.get_lines()[0].get_ydata()) == band[band["model"] == "vgg_a"].sort_values("step")["max"].tolist()
    plt.close("all")


def test_config_rejects_a_zero_gap():
    with pytest.raises(ValueError, match="gap"):
        landscape.LandscapeConfig(learning_rates=(0.1,), epochs=1, batch_size=16, gap=0)


def test_landscape_tables_are_cached_per_unit_whatever_the_device(cifar_root, tmp_path):
    from cifarnb.study.sections.batchnorm import landscape_tables
    from cifarnb.results import ResultStore

    store = ResultStore(tmp_path)
    config = landscape.LandscapeConfig(models=("vgg_a_bn",), learning_rates=(0.1,), epochs=1, batch_size=16, gap=2,
                                       n_train=32, data_root=str(cifar_root))
    lines = []
    first = landscape_tables(store, config, "one_step", log=lines.append)
    again = landscape_tables(store, config.__class__(**{**config.__dict__, "device": "cpu", "data_root": None}),
                             "one_step", log=lines.append)
    assert "computed" in lines[0] and "stored" in lines[1]
    assert first.equals(again) and set(first.quantity) == set(landscape.ONE_STEP_QUANTITIES)
    wider = landscape_tables(store, config.__class__(**{**config.__dict__, "learning_rates": (0.1, 0.05)}),
                             "one_step", log=lines.append)
    assert "stored" in lines[2] and "computed" in lines[3] and set(wider.lr) == {0.1, 0.05}
