"""The settings taken from the report's own code (xw-zeng/Neural-Network-and-Deep-Learning-2023Spring, Project 2/code),
each checked against what that code computes, written out here as it does it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cifarnb import models
from cifarnb.data import NORMALIZATIONS
from cifarnb.loaders import TensorLoader
from cifarnb.models.layers import GhostBatchNorm2d, shard_batchnorm
from cifarnb.study import profiles, reading
from cifarnb.study.sections import model_zoo, optimize_resnet18
from cifarnb.train import TrainConfig, fit
from cifarnb.train.optim import SGDVelocity, lr_schedule, parameter_groups


# ---------------------------------------------------------------- BatchNorm as nn.DataParallel runs it (main.py)


def data_parallel_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, gpus: int) -> torch.Tensor:
    """What nn.DataParallel on ``gpus`` devices computes: scatter splits the batch as torch.chunk does, each
    replica's BN normalises its piece alone, and only the first device's replica shares the module's buffers."""
    pieces = x.chunk(gpus)
    outputs = [bn(pieces[0])]  # the replica on device[0] updates the module's running statistics
    for piece in pieces[1:]:
        replica = type(bn)(bn.num_features)
        replica.load_state_dict(bn.state_dict())
        replica.train()
        outputs.append(replica(piece))  # its running statistics are thrown away with the replica
    return torch.cat(outputs)


@pytest.mark.parametrize("batch", [128, 80, 6])  # a full batch, the epoch's last 80 images, a tiny one
def test_sharded_batchnorm_equals_data_parallels_semantics(batch):
    torch.manual_seed(0)
    x = torch.randn(batch, 5, 4, 4) * 3 + 1
    plain = nn.BatchNorm2d(5)
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5)
        plain.bias.uniform_(-1, 1)
    reference = nn.Sequential(nn.BatchNorm2d(5))
    reference[0].load_state_dict(plain.state_dict())
    sharded = nn.Sequential(plain)
    assert shard_batchnorm(sharded, 4) == 1
    assert list(sharded.state_dict()) == list(reference.state_dict())  # same names: state dicts move freely

    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = sharded(x_ours)
    theirs = data_parallel_batch_norm(reference[0], x_theirs, 4)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(sharded[0].running_mean, reference[0].running_mean)
    torch.testing.assert_close(sharded[0].running_var, reference[0].running_var)
    assert int(sharded[0].num_batches_tracked) == int(reference[0].num_batches_tracked) == 1
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_theirs.grad)
    sharded.eval(), reference.eval()
    torch.testing.assert_close(sharded(x), reference(x))  # eval: plain BN with the running statistics


def test_sharding_leaves_ghost_bn_and_models_without_bn_alone():
    fast = models.build("fastresnet9")
    assert shard_batchnorm(fast, 4) == 0 and all(type(m) is GhostBatchNorm2d for m in fast.modules()
                                                 if isinstance(m, nn.BatchNorm2d))
    assert shard_batchnorm(models.build("lenet5"), 4) == 0
    assert shard_batchnorm(models.build("vgg_a_bn"), 4) == 10  # 8 BatchNorm2d and 2 BatchNorm1d


# ---------------------------------------------------------------- ghost BN without the layout round trip


class ChannelStackedGhostBN(nn.BatchNorm2d):
    """The ghost BN this project had before (its values, gradients and running statistics are the reference):
    each chunk's samples moved into the channel axis, one F.batch_norm over ghosts x C channels, moved back."""

    def __init__(self, num_features: int, ghost_batch_size: int):
        super().__init__(num_features)
        self.ghost_batch_size = ghost_batch_size

    def forward(self, x):
        size, n = self.ghost_batch_size, x.shape[0]
        full = n // size * size
        outputs, means, variances, counts = [], [], [], []
        for chunk, ghosts in ((x[:full], full // size), (x[full:], 1)):
            if chunk.shape[0] == 0:
                continue
            per, (_, c, h, w) = chunk.shape[0] // ghosts, chunk.shape
            stacked = chunk.reshape(ghosts, per, c, h, w).transpose(0, 1).reshape(per, ghosts * c, h, w)
            out = F.batch_norm(stacked, None, None, self.weight.repeat(ghosts), self.bias.repeat(ghosts), True,
                               0.0, self.eps)
            outputs.append(out.reshape(per, ghosts, c, h, w).transpose(0, 1).reshape(chunk.shape))
            with torch.no_grad():
                flat = chunk.detach().reshape(ghosts, per, c, h * w).transpose(1, 2).reshape(ghosts, c, -1)
                var, mean = torch.var_mean(flat, dim=2, correction=1)
            means.append(mean), variances.append(var)
            counts += [per] * ghosts
        with torch.no_grad():
            total = sum(counts)
            self.num_batches_tracked.add_(1)
            for running, batch in ((self.running_mean, torch.cat(means)), (self.running_var, torch.cat(variances))):
                weighted = batch[:-1].sum(0) * (counts[0] / total) + batch[-1] * (counts[-1] / total)
                running.mul_(1 - self.momentum).add_(weighted, alpha=self.momentum)
        return torch.cat(outputs)


@pytest.mark.parametrize("batch, layout", [(512, torch.contiguous_format), (100, torch.contiguous_format),
                                           (96, torch.channels_last)])
def test_ghost_bn_equals_the_channel_stacked_one(batch, layout):
    torch.manual_seed(1)
    x = (torch.randn(batch, 6, 5, 5) * 2 - 1).contiguous(memory_format=layout)
    ghost, reference = GhostBatchNorm2d(6, ghost_batch_size=32), ChannelStackedGhostBN(6, 32)
    with torch.no_grad():
        ghost.weight.uniform_(0.5, 1.5)
        ghost.bias.uniform_(-1, 1)
    reference.load_state_dict(ghost.state_dict())
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, theirs = ghost(x_ours), reference(x_theirs)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ghost.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ghost.bias.grad, reference.bias.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ghost.running_mean, reference.running_mean)
    torch.testing.assert_close(ghost.running_var, reference.running_var)
    if layout is torch.channels_last:
        assert ours.is_contiguous(memory_format=torch.channels_last)  # no trip through NCHW


def test_ghost_bn_on_a_batch_in_strided_order_is_the_codes_strided_grouping():
    """models/fastresnet9.py normalises ``input.view(-1, c * num_splits, h, w)``: ghost batch j holds samples j,
    j + num_splits, j + 2 num_splits, ... Ours holds consecutive chunks. On a batch permuted into strided order our
    layer gives the code's grouping of the unpermuted batch (outputs and running statistics, which the code keeps
    per split and averages when it turns to eval): the same statistics on a shuffled batch, so nothing re-keys."""
    torch.manual_seed(2)
    splits, batch, channels = 16, 512, 6
    x = torch.randn(batch, channels, 4, 4) * 3 + 1
    ghost = GhostBatchNorm2d(channels, ghost_batch_size=batch // splits)
    with torch.no_grad():
        ghost.bias.uniform_(-1, 1)  # the code's BN scales are frozen at 1; its shifts train
    # The code's grouping (a transcription of its semantics): one batch_norm over splits x channels.
    running_mean, running_var = torch.zeros(channels * splits), torch.ones(channels * splits)
    theirs = F.batch_norm(x.view(-1, channels * splits, 4, 4), running_mean, running_var,
                          ghost.weight.detach().repeat(splits), ghost.bias.detach().repeat(splits), True, 0.1,
                          ghost.eps).view_as(x)
    strided = torch.tensor([j + splits * i for j in range(splits) for i in range(batch // splits)])
    ours = ghost(x[strided])
    torch.testing.assert_close(ours, theirs[strided], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ghost.running_mean, running_mean.view(splits, channels).mean(0))
    torch.testing.assert_close(ghost.running_var, running_var.view(splits, channels).mean(0))
    # ... and consecutive chunks of the unpermuted batch are other groups: the permutation is what makes them equal
    assert not torch.allclose(ghost(x), theirs, atol=1e-3)


# ---------------------------------------------------------------- FastResNet9's patch whitening (utils.patch_whitening)


def patch_whitening_as_the_code_computes_it(data: torch.Tensor) -> torch.Tensor:
    """utils.patch_whitening of the report's code, written out (float64 here, for a tight comparison)."""
    h = w = 3
    c = data.size(1)
    patches = data.unfold(2, h, 1).unfold(3, w, 1)
    patches = patches.transpose(1, 3).reshape(-1, c, h, w).to(torch.float64)
    n = patches.shape[0]
    x = patches.reshape(n, c * h * w) / (n - 1) ** 0.5
    eigenvalues, eigenvectors = torch.linalg.eigh(x.t() @ x)
    eigenvalues = eigenvalues.flip(0)
    eigenvectors = eigenvectors.t().reshape(c * h * w, c, h, w).flip(0)
    return eigenvectors / torch.sqrt(eigenvalues + 1e-2).view(-1, 1, 1, 1)


def test_patch_whitening_is_the_codes_and_whitens(tiny):
    model = models.build("fastresnet9", stem="whitening")
    stem = model.prep.whitening
    assert models.init_from_data(model, tiny.x_train, *NORMALIZATIONS["cifar10"]) == 1
    mean, std = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) * 255 for v in NORMALIZATIONS["cifar10"])
    normalised = (tiny.x_train.to(torch.float64) - mean) / std
    expected = patch_whitening_as_the_code_computes_it(normalised)
    # Eigenvectors are defined up to their sign: compare each filter up to it.
    ours = stem.weight.detach().to(torch.float64).flatten(1)
    theirs = expected.flatten(1)
    signs = torch.sign((ours * theirs).sum(1, keepdim=True))
    torch.testing.assert_close(ours, theirs * signs, rtol=1e-4, atol=1e-6)
    # Whitened patches are uncorrelated, with variance eigenvalue / (eigenvalue + 0.01): about 1 along the strong
    # directions.
    patches = F.conv2d(normalised.float(), stem.weight, padding=0).permute(1, 0, 2, 3).flatten(1)
    covariance = patches @ patches.T / patches.shape[1]
    assert (covariance - torch.diag(covariance.diagonal())).abs().max() < 1e-3
    assert covariance.diagonal()[:4].min() > 0.99 and (covariance.diagonal() <= 1.0 + 1e-4).all()
    # Deterministic given the data.
    again = models.build("fastresnet9", stem="whitening")
    models.init_from_data(again, tiny.x_train, *NORMALIZATIONS["cifar10"])
    assert torch.equal(again.prep.whitening.weight, stem.weight)


# ---------------------------------------------------------------- FastResNet9's optimiser (utils.update_nesterov)


def test_sgd_velocity_is_the_codes_update_nesterov():
    torch.manual_seed(0)
    weights = [torch.randn(4, 3), torch.randn(5)]
    ours = [w.clone().requires_grad_() for w in weights]
    optimizer = SGDVelocity([{"params": [ours[0]]}, {"params": [ours[1]], "lr": 0.7, "weight_decay": 0.01}],
                            lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)
    code = [(w.clone(), torch.zeros_like(w)) for w in weights]
    rates = [0.0, 0.1, 0.3, 0.2]
    for rate in rates:  # a moving rate, where the formulations differ
        grads = [torch.randn_like(w) for w in weights]
        optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"] = rate, 7 * rate
        for w, g in zip(ours, grads):
            w.grad = g.clone()
        optimizer.step()
        for (w, velocity), g, lr, decay in zip(code, grads, (rate, 7 * rate), (0.05, 0.01)):
            gradient = g.clone().add_(w, alpha=decay).mul_(-lr)  # utils.update_nesterov, line by line
            velocity.mul_(0.9).add_(gradient)
            w.add_(gradient.add_(velocity, alpha=0.9))
    for w, (theirs, _) in zip(ours, code):
        torch.testing.assert_close(w.detach(), theirs)


def test_parameter_groups_split_weights_from_one_dimensional_parameters():
    model = models.build("fastresnet9", stem="whitening", frozen_bn_scale=True, linear_bias=False)
    config = TrainConfig(model="fastresnet9", lr=1.024, weight_decay=5e-4, bias_lr_factor=64.0,
                         bias_weight_decay=7.8125e-6)
    weights, biases = parameter_groups(config, model)
    assert all(p.ndim > 1 for p in weights["params"]) and all(p.ndim == 1 for p in biases["params"])
    assert (biases["lr"], biases["weight_decay"]) == (pytest.approx(65.536), 7.8125e-6)
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    assert frozen and not frozen & {id(p) for p in (*weights["params"], *biases["params"])}
    assert len(parameter_groups(TrainConfig(), model)) == 1


# ---------------------------------------------------------------- FastResNet9's data (utils.random_crop, train())


def test_per_batch_augmentation_is_the_codes(tiny):
    loader = TensorLoader(tiny.x_train, tiny.y_train, 16, train=True, seed=3, augmentation="per_batch",
                          drop_last=True, normalization="cifar10")
    assert len(loader) == len(tiny.y_train) // 16  # partial batches dropped
    plain = TensorLoader(tiny.x_train, tiny.y_train, 16, train=False, normalization="cifar10")
    order = torch.randperm(len(tiny.y_train), generator=torch.Generator().manual_seed(3 * 1_000_003 + 0))
    reflect = F.pad(tiny.x_train, [4] * 4, mode="reflect")
    for number, (images, labels) in enumerate(loader.batches(0)):
        rows = order[number * 16:(number + 1) * 16]
        assert torch.equal(labels, tiny.y_train[rows])
        raw = images * plain.std + plain.mean  # back to pixels
        padded = reflect[rows].float()
        # One crop offset for the whole batch, 0-7 as the code's randint(8) draws it; the first half mirrored.
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if all(torch.allclose(raw[i], (padded[i, :, dy:dy + 32, dx:dx + 32].flip(-1)
                                                  if number * 16 + i < len(tiny.y_train) // 2
                                                  else padded[i, :, dy:dy + 32, dx:dx + 32]), atol=1e-3)
                          for i in range(16))]
        assert len(matches) >= 1 and all(dy < 8 and dx < 8 for dy, dx in matches)


# ---------------------------------------------------------------- Table 5's schedules (main.py)


def test_table_5_schedules_give_main_pys_rates_over_25_epochs():
    """main.py sets the rate after epoch e (0-based) of E = 25; the first epoch runs at lr 0.01. All 25 rates of
    each schedule equal the ones main.py trains with (the last cosine epoch at 2.56e-4, not torch's 1.39e-4)."""
    configs = optimize_resnet18.ablation_configs(profiles.get("full"), "scheduler")
    epochs = 25
    code = {"StepLR": [0.01], "LinearLR": [0.01], "CosineAnnealingLR": [0.01], "ExponentialLR": [0.01]}
    for e in range(epochs - 1):  # main.py's rate during epoch e + 1
        code["StepLR"].append(code["StepLR"][-1] * (0.5 if (e + 1) % 5 == 0 else 1))
        code["LinearLR"].append(code["LinearLR"][-1] - (0.00066 if e < 15 else 0))
        code["CosineAnnealingLR"].append(1e-4 + 0.5 * (1e-2 - 1e-4) * (1 + math.cos(e / epochs * math.pi)))
        code["ExponentialLR"].append(0.01 * 0.9 ** e)
    for label, rates in code.items():
        ours = lr_schedule(configs[label], steps_per_epoch=2)
        assert len(ours) == epochs and ours == pytest.approx(rates, rel=1e-9, abs=1e-12), label
    assert code["CosineAnnealingLR"][-1] == pytest.approx(2.555e-4, rel=1e-3)
    # Without the lag, torch's schedulers would run main.py's rate of the next epoch
    assert lr_schedule(configs["CosineAnnealingLR"].replace(schedule_lag_epochs=None))[-1] == pytest.approx(
        1.390e-4, rel=1e-3)


def test_a_lagged_schedule_resumes_in_step():
    """The lag is part of the schedule's state: a run cut after its first epoch resumes at the same rates."""
    from cifarnb.train.optim import Schedule

    config = optimize_resnet18.ablation_configs(profiles.get("full"), "scheduler")["ExponentialLR"]
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=config.lr)
    first = Schedule(config, optimizer, 1)
    first.after_epoch({})  # the lagged epoch: no step
    saved, rate = first.state_dict(), optimizer.param_groups[0]["lr"]
    resumed = Schedule(config, optimizer, 1)
    resumed.load_state_dict(saved)
    optimizer.step()
    resumed.after_epoch({})
    assert rate == 0.01 and optimizer.param_groups[0]["lr"] == pytest.approx(0.009)


def test_the_zoo_and_ablations_normalise_as_data_parallel_and_wideresnet_drops_half():
    quick = profiles.get("quick")
    assert model_zoo.zoo_config(quick, "wideresnet28x10").model_options == {"dropout": 0.5,
                                                                           "projection_input": "block_input"}
    assert model_zoo.zoo_config(quick, "densenet100_bc").model_options == {"init": "kaiming_normal"}
    with_bn = [m for m in quick.zoo_models if model_zoo.zoo_config(quick, m).bn_shards == 4]
    assert set(quick.zoo_models) - set(with_bn) == {"lenet5", "alexnet"}  # the two without BatchNorm
    # ... so their keys, and their stored runs, stay (LeNet5's quick seed 0 run is committed under this key)
    assert model_zoo.zoo_config(quick, "lenet5").key() == "a5b118104aa9b0ee"


# ---------------------------------------------------------------- VGG_acc.py: evaluations every 100 steps, the best


def test_evaluations_every_n_steps_and_the_best_of_them(tiny):
    config = TrainConfig(model="lenet5", epochs=2, batch_size=16, lr=0.05, device="cpu", eval_every_steps=3,
                         scheduler="none")
    result = fit(config, tiny, progress=False)
    steps = len(tiny.y_train) // 16  # 4 a epoch
    evaluations = [e for row in result.history for e in row["step_evals"]]
    assert [e["step"] for e in evaluations] == [3, 6]
    assert [e["step"] for e in result.history[1]["step_evals"]] == [6] and steps == 4
    assert all(e["seconds"] > 0 for e in evaluations)  # timed apart from the epoch's training seconds
    from cifarnb.results import Run

    run = Run(config, result.history, "finished")
    # The best of VGG_acc.py's evaluations only: every eval_every_steps steps, not the epoch ends on top
    assert reading.run_accuracy(run, "test_acc", statistic=reading.BEST) == max(e["test_acc"] for e in evaluations)
    assert reading.run_accuracy(run, "test_acc", epoch=1, statistic=reading.BEST) == \
        result.history[0]["step_evals"][0]["test_acc"]
    higher_ends = [{**row, "test_acc": 99.0} for row in result.history]  # epoch ends above every step evaluation
    assert reading.run_accuracy(Run(config, higher_ends, "finished"), "test_acc", statistic=reading.BEST) < 99.0
    # A run evaluated at its epochs' ends only (main.py) takes the best of those
    plain = Run(config.replace(eval_every_steps=None), higher_ends, "finished")
    assert reading.run_accuracy(plain, "test_acc", statistic=reading.BEST) == 99.0
    # The evaluations are measurements only: the trajectory equals a run without them.
    without = fit(config.replace(eval_every_steps=None), tiny, progress=False)
    assert [r["train_loss"] for r in without.history] == [r["train_loss"] for r in result.history]


def test_vgg_template_biases_are_the_templates():
    # models/vgg.py of the course template: VGG-A without conv biases in stages 3-5 (9,748,362 parameters);
    # VGG-A + BN without a bias before any BN (9,754,698).
    assert models.count_parameters(models.build("vgg_a", bias="template")) == 9_748_362
    assert models.count_parameters(models.build("vgg_a_bn", bias="template")) == 9_754_698
    assert models.count_parameters(models.build("vgg_a")) == 9_750_922  # biases everywhere, as before


# ---------------------------------------------------------------- the report's FastResNet9 trains on the CPU


def test_the_report_codes_fastresnet9_trains_without_diverging(tiny):
    from cifarnb.study import recipes

    config = recipes.report("fastresnet9", epochs=3, batch_size=16, device="cpu", n_train=64, n_test=64)
    result = fit(config, tiny, progress=False)
    assert not result.diverged and all(math.isfinite(row["train_loss"]) for row in result.history)
    assert models.count_parameters(result.model, trainable_only=True) == 6_570_880
