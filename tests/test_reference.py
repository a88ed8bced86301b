import json
from pathlib import Path

import pytest

from cifarnb import models
from cifarnb.study import reference

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "report" / "reference_results.json"


def test_packaged_reference_matches_the_shared_copy():
    if not SHARED_REFERENCE.exists():
        pytest.skip("../shared/report/reference_results.json is not here")
    assert reference.raw() == json.loads(SHARED_REFERENCE.read_text())


def test_every_report_model_name_is_in_the_registry():
    names = set(reference.model_zoo().model) | set(reference.resnet9().model) | set(reference.batchnorm_accuracy())
    assert names <= set(models.list_models())


@pytest.mark.parametrize("group", list(reference.ABLATION_FIELDS))
def test_ablation_tables_have_five_rows_with_both_accuracies(group):
    table = reference.ablation(group)
    assert len(table) == 5 and table.report_test_acc.between(50, 100).all()


def test_baseline_row_is_shared_across_groups():
    baseline = {"loss": "CrossEntropyLoss", "weight_decay": "5e-4", "activation": "ReLU", "optimizer": "SGD",
                "scheduler": "ReduceLROnPlateau"}
    rows = [reference.ablation(g).set_index("label").loc[label, ["report_train_acc", "report_test_acc"]].tolist()
            for g, label in baseline.items()]
    assert all(r == [94.95, 90.61] for r in rows)


def test_unknown_group_lists_the_valid_ones():
    with pytest.raises(ValueError, match="loss, weight_decay, activation, optimizer, scheduler"):
        reference.ablation("dropout")
