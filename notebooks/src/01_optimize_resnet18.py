# %% [markdown]
# # 01 · Optimising ResNet18: loss, weight decay, activation, optimizer, LR schedule
#
# Report section 1.1 (Tables 1-5, Figs 2-6). The report trains ResNet18 for 25 epochs from one baseline
# (lr 0.01, CrossEntropyLoss, weight decay 5e-4, ReLU, SGD with momentum 0.9, ReduceLROnPlateau, batch 128,
# random crop + flip) and changes one choice at a time. It ran each setting **once**; here every setting runs
# over several seeds and our column shows mean ± std beside the report's number.
#
# Runs come from the results store: re-executing loads finished runs and resumes interrupted ones.

# %% tags=["parameters"]
profile = "smoke"  # smoke | quick | full
seeds = None  # None: the profile's seeds, e.g. [0, 1, 2]
data_dir = None  # folder holding cifar-10-batches-py/ (None: $CIFARNB_DATA, then ./data)
results_dir = "../results"
figures_dir = "../figures"
device = "auto"
backend = "local"  # local | ray: runs the store lacks train on a Ray cluster (pip install -e ".[cluster]")
ray_address = None  # backend "ray": None starts a local Ray instance; else the cluster's, e.g. "10.0.0.1:6379"
gpus_per_run = 0.0  # backend "ray": GPUs reserved per run (0.25 packs four runs on one GPU)
epochs = None  # None: the profile's (report: 25)
n_train = None  # None: the profile's subset size (None in quick/full: all 50,000)
n_test = None

# %%
import matplotlib.pyplot as plt
import pandas as pd

from cifarnb import analysis, experiments, notebook, reference
from cifarnb.plots import curves

session = notebook.setup("01_optimize_resnet18", profile=profile, seeds=seeds, data_dir=data_dir,
                         results_dir=results_dir, figures_dir=figures_dir, device=device, backend=backend,
                         ray_address=ray_address, gpus_per_run=gpus_per_run,
                         epochs=epochs, epochs_field="ablation_epochs", n_train=n_train, n_test=n_test)
GROUPS = {"loss": "Table 1 / Fig 2: loss function", "weight_decay": "Table 2 / Fig 3: weight decay",
          "activation": "Table 3 / Fig 4: activation", "optimizer": "Table 4 / Fig 5: optimizer",
          "scheduler": "Table 5 / Fig 6: learning-rate schedule"}

# %% [markdown]
# ## The baseline configuration at this profile

# %%
# NBVAL_CHECK_OUTPUT
baseline = experiments.ablation_configs(session.profile, "loss")["CrossEntropyLoss"]
shown = ["model", "epochs", "batch_size", "lr", "momentum", "weight_decay", "optimizer", "loss", "activation",
         "scheduler", "plateau_factor", "plateau_patience", "plateau_cooldown", "min_lr", "n_train", "n_test"]
pd.Series({name: getattr(baseline, name) for name in shown}, name="value").to_frame()

# %% [markdown]
# ## Run every ablation
# The baseline (CE, 5e-4, ReLU, SGD, plateau) is the same run in all five groups, so it trains once.

# %%
results = {group: session.run_grid(experiments.ablation_configs(session.profile, group)) for group in GROUPS}


# %% [markdown]
# Our test accuracy is read where it compares with the report's: on the exact test rows 0-999 when a run saw
# the whole test set (rows 1000-9999 of this project's copy are JPEG approximations that cost a trained model
# several points), with its standard error (SE: about 1.4 points near 75%, 0.75 near 94%); the accuracy on all
# test images is beside it.

# %%
from cifarnb.settings import ABLATION_EPOCHS

PRIMARY_HEADING = analysis.column_heading(analysis.primary_column(next(iter(results["loss"].values()))))


def ablation_table(group):
    table = analysis.comparison_table(
        results[group],
        measures={"ours: train acc (%)": ("train_acc", None),
                  f"ours: {PRIMARY_HEADING} (%)": (analysis.PRIMARY, None),
                  "ours: test acc, all test images (%)": ("test_acc", None)},
        reference_rows=reference.ablation(group),
        reference_columns={"report: train acc (%)": "report_train_acc", "report: test acc (%)": "report_test_acc"},
        report_epochs=ABLATION_EPOCHS,
    )
    table.index.name = GROUPS[group].split(":")[1].strip()
    return table


def ablation_figure(group):
    figure = curves.learning_curves(results[group], title=f"ResNet18, {GROUPS[group]} "
                                    f"(profile {session.profile.name}, mean and seed range)")
    session.save(figure, f"{group}_curves")
    plt.show()


# %% [markdown]
# ## Table 1 · Loss function
# The non-cross-entropy losses compare the logits with one-hot targets (BCEWithLogits, MSE, Huber,
# MultiLabelSoftMargin), as the report's table implies. **BCEWithLogits and MultiLabelSoftMargin are then one
# loss**: with one-hot targets and mean reduction they give identical values and gradients
# (`tests/test_train.py` pins it), so the report's 84.83% vs 87.85% between them is run-to-run noise, and any
# gap between their rows here is too.

# %%
# NBVAL_CHECK_OUTPUT
ablation_table("loss")

# %%
ablation_figure("loss")

# %% [markdown]
# ## Table 2 · Weight decay

# %%
# NBVAL_CHECK_OUTPUT
ablation_table("weight_decay")

# %%
ablation_figure("weight_decay")

# %% [markdown]
# ## Table 3 · Activation function

# %%
# NBVAL_CHECK_OUTPUT
ablation_table("activation")

# %%
ablation_figure("activation")

# %% [markdown]
# ## Table 4 · Optimizer
# All optimizers start at the baseline's lr 0.01. The report blames Adam's poor result on that starting rate,
# calling it too low; 0.01 is ten times Adam's customary 1e-3, so "too high" is the likelier reading.

# %%
# NBVAL_CHECK_OUTPUT
ablation_table("optimizer")

# %%
ablation_figure("optimizer")

# %% [markdown]
# ## Table 5 · Learning-rate schedule, and the five LR curves (Fig 6)
# The report gives no parameters for StepLR, LinearLR and ExponentialLR; we use a step every third of the run
# (x0.1), a linear decay to 1% and a decay of 0.9 per epoch, and cosine annealing over the whole run.

# %%
# NBVAL_CHECK_OUTPUT
ablation_table("scheduler")

# %%
from cifarnb import profiles
from cifarnb.train.optim import lr_schedule

report_length = experiments.ablation_configs(profiles.get("full"), "scheduler")
figure, (preview_ax, lr_ax, acc_ax) = plt.subplots(1, 3, figsize=(15, 4))
for label, config in report_length.items():
    preview_ax.plot(range(1, config.epochs + 1), lr_schedule(config, steps_per_epoch=391), label=label)
preview_ax.set(yscale="log", xlabel="epoch", ylabel="learning rate",
               title="the five schedules at the report's 25 epochs\n(plateau: loss never improving, fastest cut)")
curves.plot_curve(results["scheduler"], "lr", lr_ax, log_y=True)
curves.plot_curve(results["scheduler"], "test_acc", acc_ax)
lr_ax.set_title(f"learning rate in our runs ({session.profile.name})")
acc_ax.set_title(f"test accuracy in our runs ({session.profile.name})")
preview_ax.legend()
figure.tight_layout()
session.save(figure, "scheduler_lr_curves")
plt.show()

# %%
ablation_figure("scheduler")

# %% [markdown]
# ## The chosen recipe
# The report keeps cross-entropy, weight decay 5e-4, ReLU, SGD and ReduceLROnPlateau for the model zoo
# (section 1.3), although Mish and cosine annealing scored higher in its single runs. The table below lists,
# per group, the report's choice, the report's best single run and our best mean, so the choice can be
# checked against the seed spread.

# %%
# NBVAL_CHECK_OUTPUT
analysis.recipe_choice_table(results)

# %% [markdown]
# ## Reading the results
# Each table's last column says whether its row compares with the report. At `smoke` (32 training images,
# 50 test images, 3 epochs, a CPU) every number above only shows that the pipeline runs end to end: accuracies
# sit near chance (10%), so a "10.00%" beside the report's 90.61% measures nothing, and which setting "wins"
# is noise. At `quick` (all data, the report's 25 epochs, several seeds) the rows compare directly with the
# report's single runs, and the seed spread says which of its differences are real.
