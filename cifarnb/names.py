"""The names a run's config chooses among (models, activations, loaders, augmentations), without importing torch.

``TrainConfig`` checks a config against them and the command line lists them in its help, so ``cifarnb --help``
answers in a fraction of a second instead of importing torch first. The modules that implement the names (the
models' registry, ``models.layers``, ``loaders``) are checked against these lists (``tests/test_cli.py``).
"""

# Every model the registry builds (cifarnb.models.list_models(), sorted).
MODELS = ("alexnet", "densenet100_bc", "densenet121", "fastresnet9", "geresnext29_8x64d", "lenet5", "resnet18",
          "resnet34", "resnet50", "resnet9", "resnext29_2x32d", "resnext29_2x64d", "resnext29_32x4d", "vgg_a",
          "vgg_a_bn", "wideresnet16x8", "wideresnet28x10")
# The activations every family's `activation=` option takes (cifarnb.models.layers.make_activation).
ACTIVATIONS = ("relu", "mish", "leaky_relu", "elu", "gelu")
# How training batches reach the model (cifarnb.loaders.make_loader): tensors on the device, or the report's
# torchvision DataLoader pipeline.
LOADERS = ("tensor", "torchvision")
# How crop and flip are drawn (cifarnb.loaders.TensorLoader): per image, or per batch as the report's FastResNet9.
AUGMENTATIONS = ("per_image", "per_batch")
