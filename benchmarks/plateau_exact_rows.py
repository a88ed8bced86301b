"""Does stepping ReduceLROnPlateau on the exact test rows move the epochs at which the rate halves?

Without the official archive, 9,000 of the shared copy's 10,000 test images are JPEG approximations, and main.py
steps its plateau scheduler on the loss over all of them. This trains LeNet5 at the zoo's settings (Table 6) for
25 epochs with the scheduler stepped on the test loss of all 10,000 images (the default) and on the loss of the
exact rows 0-999 alone (``plateau_metric="test_loss_exact1000"``), for each seed, through the results store (so a
rerun reads them back), and prints the epochs after which the rate halved under each.

    CIFARNB_DATA=../shared/cifar10 python benchmarks/plateau_exact_rows.py [--seeds 0 1] [--results results]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from cifarnb.results import ResultStore
from cifarnb.study import profiles
from cifarnb.study.sections import model_zoo
from cifarnb.study.settings import EARLY_ZOO_EPOCHS

READINGS = {"all 10,000 test images (main.py's, the default)": "test_loss",
            "exact rows 0-999": "test_loss_exact1000"}


def halving_epochs(history: list[dict]) -> list[int]:
    """The epochs after which the rate fell (the epoch whose end stepped it)."""
    return [row["epoch"] - 1 for row in history[1:] if row["lr"] < history[row["epoch"] - 2]["lr"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--results", default="results", help="the results store (default: results)")
    parser.add_argument("--epochs", type=int, default=EARLY_ZOO_EPOCHS)
    args = parser.parse_args()
    store = ResultStore(args.results)
    base = model_zoo.zoo_config(profiles.get("full"), "lenet5").replace(epochs=args.epochs, device="cpu")
    record = {"torch": torch.__version__, "threads": torch.get_num_threads(), "epochs": args.epochs, "runs": []}
    for seed in args.seeds:
        for label, metric in READINGS.items():
            config = base.replace(seed=seed, plateau_metric=metric)
            started = time.perf_counter()
            run = store.run(config, progress=False)
            halvings = halving_epochs(run.history)
            last = run.history[-1]
            record["runs"].append(dict(seed=seed, stepped_on=metric, key=config.key(), halved_after=halvings,
                                       test_acc=last["test_acc"], test_acc_exact1000=last["test_acc_exact1000"],
                                       seconds=round(time.perf_counter() - started, 1)))
            print(f"seed {seed}, stepped on {label}: the rate halved after epochs {halvings or 'none'}; "
                  f"epoch {last['epoch']}: {last['test_acc_exact1000']:.2f}% on rows 0-999, "
                  f"{last['test_acc']:.2f}% on all 10,000", flush=True)
    same = all(a["halved_after"] == b["halved_after"] for a, b in zip(record["runs"][::2], record["runs"][1::2]))
    print("the halving epochs are the same under both" if same else "the halving epochs differ")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
