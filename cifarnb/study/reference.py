"""The report's published numbers (``reference_results.json``, copied from the report's data) in our names.

Every table in the notebooks puts these beside our measurements. Names are translated to this package's
config values (e.g. ``"BCEWithLogitsLoss"`` -> ``loss="bce_with_logits"``, ``"ResNeXt29_2x32d"`` ->
``model="resnext29_2x32d"``) so a table row and a run can be joined on them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# Report section 1.1: which TrainConfig field each ablation group varies, and the report's label of each value.
ABLATION_FIELDS = {
    "loss": "loss",
    "weight_decay": "weight_decay",
    "activation": "activation",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
}
REPORT_VALUE_NAMES = {
    "loss": {
        "CrossEntropyLoss": "cross_entropy",
        "BCEWithLogitsLoss": "bce_with_logits",
        "MSELoss": "mse",
        "HuberLoss": "huber",
        "MultiLabelSoftMarginLoss": "multilabel_soft_margin",
    },
    "weight_decay": {"1e-4": 1e-4, "5e-4": 5e-4, "1e-3": 1e-3, "5e-3": 5e-3, "1e-2": 1e-2},
    "activation": {"ReLU": "relu", "Mish": "mish", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu"},
    "optimizer": {"SGD": "sgd", "Adam": "adam", "Adadelta": "adadelta", "Adagrad": "adagrad", "Adamax": "adamax"},
    "scheduler": {
        "ReduceLROnPlateau": "plateau",
        "StepLR": "step",
        "LinearLR": "linear",
        "ExponentialLR": "exponential",
        "CosineAnnealingLR": "cosine",
    },
}
REPORT_MODEL_NAMES = {
    "LeNet5": "lenet5",
    "AlexNet": "alexnet",
    "ResNet18": "resnet18",
    "ResNet34": "resnet34",
    "ResNet50": "resnet50",
    "ResNeXt29_2x32d": "resnext29_2x32d",
    "ResNeXt29_2x64d": "resnext29_2x64d",
    "ResNeXt29_32x4d": "resnext29_32x4d",
    "DenseNet100_bc": "densenet100_bc",
    "DenseNet121": "densenet121",
    "WideResNet16x8": "wideresnet16x8",
    "WideResNet28x10": "wideresnet28x10",
    "GeResNeXt29_8x64d": "geresnext29_8x64d",
    "ResNet9": "resnet9",
    "FastResNet9": "fastresnet9",
    "VGG_A": "vgg_a",
    "VGG_A_BatchNorm": "vgg_a_bn",
}


@lru_cache(maxsize=1)
def raw() -> dict:
    """The reference file as published."""
    return json.loads(resources.files("cifarnb.study").joinpath("reference_results.json").read_text())


def ablation(group: str):
    """Report Tables 1-5: one row per setting with our value, the report's label and its train/test accuracy."""
    import pandas as pd

    if group not in ABLATION_FIELDS:
        raise ValueError(f"ablation group {group!r} is not one of {', '.join(ABLATION_FIELDS)}")
    rows = [
        {"label": label, "value": REPORT_VALUE_NAMES[group][label], "report_train_acc": train, "report_test_acc": test}
        for label, (train, test) in raw()["ablations_resnet18"][group].items()
    ]
    return pd.DataFrame(rows)


def model_zoo():
    """Report Table 7 with our model names."""
    return _model_table("model_zoo")


def resnet9():
    """Report Tables 8-9 with our model names."""
    return _model_table("resnet9")


def _model_table(section_name: str):
    import pandas as pd

    section = raw()[section_name]
    columns = ["report_" + column for column in section["columns"]]
    rows = [{"label": label, "model": REPORT_MODEL_NAMES[label], **dict(zip(columns, values))}
            for label, values in section["rows"].items()]
    return pd.DataFrame(rows)


def batchnorm_accuracy() -> dict[str, float]:
    """Report section 2.1: test accuracy after 20 epochs, by our model name."""
    section = raw()["batchnorm_vgg_a"]["accuracy_20_epochs"]
    return {REPORT_MODEL_NAMES[k]: v for k, v in section.items() if k in REPORT_MODEL_NAMES}



@dataclass(frozen=True)
class Claim:
    """One of report 1.4's claims about FastResNet9: the accuracy and the epoch its text names.

    ``kind`` is "passes" (passes ``accuracy`` by epoch ``epoch``) or "reaches" (``accuracy`` after ``epoch``
    epochs). The accuracy is the one the claim states: claim (a) names the 200-epoch ResNet9 at 93.10%, while
    Table 8 prints 93.07% for it; the claim is checked as the report states it.
    """

    text: str
    kind: str
    accuracy: float
    epoch: int


CLAIM_PATTERN = re.compile(r"(?P<kind>passes|reaches).*?(?P<accuracy>\d+\.\d+)%\)? after (?P<epoch>\d+) epochs")


def fastresnet9_claims() -> list[Claim]:
    """Report 1.4's claims (a) and (b), in the report's order, with the numbers read from their text."""
    claims = []
    for text in raw()["resnet9"]["claims"]:
        match = CLAIM_PATTERN.search(text)
        if match is None:
            raise ValueError(f"reference claim {text!r} does not name 'passes|reaches ... N% ... after K epochs'; "
                             f"fix reference_results.json or CLAIM_PATTERN in cifarnb/study/reference.py")
        claims.append(Claim(text, match["kind"], float(match["accuracy"]), int(match["epoch"])))
    return claims
