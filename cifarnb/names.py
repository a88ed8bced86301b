"""The names a run's config chooses among (models, activations, loaders, augmentations), without importing torch.

``TrainConfig`` checks a config against them and the command line lists them in its help, so ``cifarnb --help``
answers in a fraction of a second instead of importing torch first. The models' registry checks itself against
:data:`MODEL_FAMILIES` as it fills (``cifarnb.models._registry``); ``models.layers`` and ``loaders`` are checked
against their lists by ``tests/test_cli.py``.
"""

# Every model of the zoo and its family: the module of cifarnb.models that registers it (as timm's register_model
# records a model's module). The one list of the zoo's names: `register` refuses a model of cifarnb.models that is
# not here or lies in another family, and `cifarnb.models` refuses to import while one here is not registered, so
# the command line's help (which lists these without importing torch), `models.list_models()`, `models.build` and
# `models.model_family` cannot disagree.
MODEL_FAMILIES = {
    "alexnet": "alexnet",
    "densenet100_bc": "densenet", "densenet121": "densenet",
    "geresnext29_8x64d": "geresnext",
    "lenet5": "lenet",
    "resnet18": "resnet", "resnet34": "resnet", "resnet50": "resnet",
    "resnet9": "resnet9", "fastresnet9": "resnet9",
    "resnext29_2x32d": "resnext", "resnext29_2x64d": "resnext", "resnext29_32x4d": "resnext",
    "vgg_a": "vgg", "vgg_a_bn": "vgg",
    "wideresnet16x8": "wideresnet", "wideresnet28x10": "wideresnet",
}
MODELS = tuple(sorted(MODEL_FAMILIES))  # as cifarnb.models.list_models() gives them
# The activations every family's `activation=` option takes (cifarnb.models.layers.make_activation).
ACTIVATIONS = ("relu", "mish", "leaky_relu", "elu", "gelu")
# How training batches reach the model (cifarnb.loaders.make_loader): tensors on the device, or the report's
# torchvision DataLoader pipeline.
LOADERS = ("tensor", "torchvision")
# How crop and flip are drawn (cifarnb.loaders.TensorLoader): per image, or per batch as the report's FastResNet9.
AUGMENTATIONS = ("per_image", "per_batch")
