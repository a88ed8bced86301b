import pytest
import torch

from cifarnb.data import MEAN, STD
from cifarnb.loaders import TensorLoader, make_loader


def test_tensor_loader_normalises_like_torchvision(tiny):
    tensor = make_loader("tensor", tiny.x_test, tiny.y_test, 16, train=False)
    reference = make_loader("torchvision", tiny.x_test, tiny.y_test, 16, train=False, num_workers=0)
    for (a, ya), (b, yb) in zip(tensor.batches(), reference.batches()):
        assert torch.equal(ya, yb)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_augmentation_is_a_shifted_and_maybe_mirrored_crop(tiny):
    loader = TensorLoader(tiny.x_train, tiny.y_train, 64, train=True, seed=1)
    padded = torch.nn.functional.pad(tiny.x_train.float(), [4] * 4)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255
    order = torch.randperm(64, generator=torch.Generator().manual_seed(1 * 1_000_003 + 0))
    images, labels = next(loader.batches(0))
    assert torch.equal(labels, tiny.y_train[order])
    raw = images * std + mean
    for crop, source in zip(raw, padded[order]):
        candidates = [source[:, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        candidates += [c.flip(-1) for c in candidates]
        assert min((crop - c).abs().max() for c in candidates) < 1e-3


def test_epochs_differ_but_repeat_for_the_same_seed(tiny):
    first = TensorLoader(tiny.x_train, tiny.y_train, 32, train=True, seed=5)
    second = TensorLoader(tiny.x_train, tiny.y_train, 32, train=True, seed=5)
    a0 = torch.cat([x for x, _ in first.batches(0)])
    assert torch.equal(a0, torch.cat([x for x, _ in second.batches(0)]))
    assert not torch.equal(a0, torch.cat([x for x, _ in first.batches(1)]))


def test_batch_count_and_drop_last(tiny):
    assert len(TensorLoader(tiny.x_train, tiny.y_train, 10, train=True)) == 7
    assert len(TensorLoader(tiny.x_train, tiny.y_train, 10, train=True, drop_last=True)) == 6
    assert sum(len(y) for _, y in TensorLoader(tiny.x_train, tiny.y_train, 10, train=True).batches()) == 64


def test_unknown_loader_lists_choices(tiny):
    with pytest.raises(ValueError, match="tensor, torchvision"):
        make_loader("dali", tiny.x_train, tiny.y_train, 8, train=True)
