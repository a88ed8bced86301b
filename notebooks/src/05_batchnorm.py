# %% [markdown]
# # 05 · BatchNorm on VGG-A: accuracy and the optimisation landscape
#
# Report section 2 (Tables 10-11, Figs 28-32), which follows Santurkar et al. 2018, *How Does Batch
# Normalization Help Optimization?* Two parts:
#
# * **2.1, Fig 28**: VGG-A with and without BatchNorm, plain SGD (lr 0.1, no momentum, no weight decay, no lr
#   decay), batch 128, 20 epochs. The report ran each model **once** (79.5% vs 82.8% test accuracy); here each
#   runs over several seeds and our column shows mean ± std beside the report's number.
# * **2.2, Figs 30-32**: how smooth the landscape is that SGD walks on, measured two ways:
#   1. **the report's method**: one plain-SGD run per learning rate in {0.05, 0.075, 0.1, 0.125, 0.15}; every
#      `gap` = 30 steps record the mean training loss of the window, the distance between the gradients of two
#      consecutive steps, and the effective β = that distance / the weight change; the band at a step is the
#      min/max **across learning rates**;
#   2. **the paper's method** (its Fig. 4): one run at lr 0.1; at a probed step, walk from the weights along
#      the step's gradient with step sizes η ∈ [0.05, 0.4] and, on the **same minibatch**, record the loss and
#      the gradient change there; the band is the min/max **across η**, and β is the largest gradient change per
#      unit distance moved.
#
# `cifarnb.landscape` holds both measurements (its module docstring defines every quantity exactly); this
# notebook only runs them through the results store and plots them. The landscape runs use one seed (0), as
# the report and the paper do: the spread in their bands comes from the learning rates (report) or the step
# sizes (paper), not from seeds.
#
# Runs come from the results store: re-executing loads finished runs and resumes interrupted ones; each
# landscape run is one cached table per (model, learning rate), so a stopped execution loses at most one.

# %% tags=["parameters"]
profile = "smoke"  # smoke | quick | full
seeds = None  # None: the profile's seeds, e.g. [0, 1, 2] (accuracy runs; the landscape runs use seed 0)
data_root = None  # folder holding cifar-10-batches-py/ (None: $CIFARNB_DATA, then ./data)
results_dir = "../results"
figures_dir = "../figures"
device = "auto"
backend = "local"  # local | ray: runs the store lacks train on a Ray cluster (pip install -e ".[cluster]")
ray_address = None  # backend "ray": None starts a local Ray instance; else the cluster's, e.g. "10.0.0.1:6379"
gpus_per_run = 0.0  # backend "ray": GPUs reserved per run (0.25 packs four runs on one GPU)
epochs = None  # None: the profile's vgg_epochs (report: 20); used by the accuracy and the landscape runs
learning_rates = None  # None: the profile's landscape learning rates (report: [0.05, 0.075, 0.1, 0.125, 0.15])
gap = None  # None: the profile's window length in steps for the report's method (report: 30)
n_train = None  # None: the profile's subset size for the accuracy runs (the landscape uses the profile's own)
n_test = None

# %%
import matplotlib.pyplot as plt
import pandas as pd

from cifarnb import landscape
from cifarnb.plots import band_figure, curves
from cifarnb.study import notebook, reading, reference
from cifarnb.study.sections import batchnorm as section

session = notebook.setup("05_batchnorm", globals())
# Built here so that a bad learning-rate list or gap fails in this cell (the tables' keys leave the device out).
LANDSCAPE = section.landscape_config(session.profile)
PAPER_LR = landscape.PAPER_LEARNING_RATE  # always 0.1, as in the paper
PROBE_EVERY = session.profile.probe_every

# %% [markdown]
# ## Settings at this profile (report Tables 10 and 11)

# %%
# NBVAL_CHECK_OUTPUT
vgg = section.vgg_configs(session.profile)["VGG-A"]
report_settings = reference.raw()["batchnorm_vgg_a"]
acc_ref, land_ref = report_settings["accuracy_20_epochs"]["settings"], report_settings["landscape_settings"]
settings = pd.DataFrame(
    [
        ("2.1 accuracy", "optimizer", acc_ref["optimizer"], f"{vgg.optimizer} (momentum {vgg.momentum}, "
         f"weight decay {vgg.weight_decay}, schedule {vgg.scheduler})"),
        ("2.1 accuracy", "loss", acc_ref["loss"], vgg.loss),
        ("2.1 accuracy", "epochs", acc_ref["epochs"], vgg.epochs),
        ("2.1 accuracy", "batch size", acc_ref["batch_size"], vgg.batch_size),
        ("2.1 accuracy", "learning rate", acc_ref["lr"], vgg.lr),
        ("2.1 accuracy", "train / test images", "50000 / 10000",
         f"{vgg.n_train or 50000} / {vgg.n_test or 10000}"),
        ("2.1 accuracy", "seeds", 1, len(session.seeds)),
        ("2.1 accuracy", "data pipeline", "the course template's (guidance file)",
         f"augment={vgg.augment}, normalization={vgg.normalization!r}"),
        ("2.1 accuracy", "initialisation", "the course template's (guidance file)",
         str(vgg.model_options.get("init", "default"))),
        ("2.2 landscape", "optimizer", f"{land_ref['optimizer']} (no {', no '.join(land_ref['no'])})",
         "plain SGD (no momentum, weight decay, lr decay or dropout)"),
        ("2.2 landscape", "epochs", land_ref["epochs"], LANDSCAPE.epochs),
        ("2.2 landscape", "batch size", land_ref["batch_size"], LANDSCAPE.batch_size),
        ("2.2 landscape", "learning rates (report's method)", str(land_ref["learning_rates"]),
         str(list(LANDSCAPE.learning_rates))),
        ("2.2 landscape", "gap (steps per window)", land_ref["gap_steps"], LANDSCAPE.gap),
        ("2.2 landscape", "train images", 50000, LANDSCAPE.n_train or 50000),
        ("2.2 landscape", "seed", "1 run", LANDSCAPE.seed),
        ("2.2 landscape", "data pipeline, initialisation", "the course template's",
         f"augment={LANDSCAPE.augment}, normalization={LANDSCAPE.normalization!r}, init={LANDSCAPE.init!r}"),
        ("paper Fig. 4", "learning rate", 0.1, PAPER_LR),
        ("paper Fig. 4", "step sizes eta along the gradient", "[0.05, 0.4]",
         ", ".join(f"{eta:.3g}" for eta in landscape.paper_etas(PAPER_LR))),
        ("paper Fig. 4", "probe every (steps)", "not stated", PROBE_EVERY),
    ],
    columns=["part", "setting", "report / paper", "ours (this profile)"],
).set_index(["part", "setting"])
settings.astype(str)

# %% [markdown]
# ## 2.1 · Accuracy with and without BatchNorm (Fig 28)

# %%
results = session.run_grid(section.vgg_configs(session.profile))

# %%
# NBVAL_CHECK_OUTPUT
from cifarnb.study.settings import VGG_EPOCHS

last_epoch = session.profile.vgg_epochs
model_of = {label: config.model for label, config in section.vgg_configs(session.profile).items()}
report_accuracy = reference.batchnorm_accuracy()
accuracy_table = reading.comparison_table(
    results,
    measures={f"ours: train acc, epoch {last_epoch} (%)": ("train_acc", None),
              f"ours: {reading.column_heading(reading.primary_column(results['VGG-A']))}, epoch {last_epoch} (%)":
                  (reading.PRIMARY, None),
              f"ours: test acc, all test images, epoch {last_epoch} (%)": ("test_acc", None)},
    reference_rows=pd.DataFrame([{"label": label, "report_test_acc": report_accuracy[model]}
                                 for label, model in model_of.items()]),
    reference_columns={f"report: test acc, epoch {VGG_EPOCHS} (%)": "report_test_acc"},
    report_epochs=VGG_EPOCHS,
)
accuracy_table.index.name = f"model (ours: final epoch = {last_epoch})"
accuracy_table

# %%
figure = curves.learning_curves(results, title=f"Fig 28 · VGG-A vs VGG-A + BN, plain SGD lr 0.1 "
                                f"(profile {session.profile.name}, mean and seed range)")
session.save(figure, "fig28_vgg_accuracy")
plt.show()

# %% [markdown]
# The report reads 79.5% (VGG-A) and 82.8% (VGG-A + BN) after 20 epochs from single runs. Our columns are at
# the final epoch of this profile (the header of the index says which); only at `quick`/`full` (20 epochs,
# all 50,000 images) do they compare directly with the report's. At `smoke` (32 training images, 2 epochs)
# they only show that the pipeline runs: VGG-A without BN typically has not left chance level (10%) yet.

# %% [markdown]
# ## 2.2 · The report's method (Figs 30-32): bands across learning rates
# One plain-SGD run per (model, learning rate), all from the same initial weights and batch order, cut into
# windows of `gap` steps. Per window (plotted at its last step `s`):
#
# * **loss**: the mean training loss over the window's `gap` steps;
# * **gradient distance**: ‖g(s) − g(s−1)‖₂, the gradients of two **consecutive steps**, i.e. at two
#   different weights **and on two different minibatches**, so it includes minibatch noise as well as
#   curvature;
# * **effective β**: that distance divided by the weight change ‖w(s) − w(s−1)‖ = lr · ‖g(s−1)‖ (report
#   eq. 6).
#
# Both are measured twice: on **all parameters** (eq. 6 as written) and on the **last linear layer's weight**
# alone, with β = ‖Δg‖ / (‖Δw‖ + 1e-3), as the course's VGG_BatchNorm template records them (left and right
# panels of Figs 31-32). The band is the min/max of each quantity across the learning rates.


# %%
report_table = section.landscape_tables(session.store, LANDSCAPE, "report")


# %%
lr_text = ", ".join(f"{lr:g}" for lr in LANDSCAPE.learning_rates)
report_suffix = (f"\nreport's method: band over lr ∈ {{{lr_text}}}, gap {LANDSCAPE.gap} "
                 f"(profile {session.profile.name})")
session.save(band_figure(report_table, f"Fig 30 · Loss landscape (window mean){report_suffix}",
                         [(landscape.LOSS, None)], plateau=True), "fig30_loss_landscape")
plt.show()

# %%
SCOPES = "all parameters (report eq. 6)", "last linear layer's weight (the template's)"
session.save(band_figure(report_table, f"Fig 31 · Gradient distance of consecutive steps{report_suffix}",
                         list(zip((landscape.GRAD_DISTANCE, landscape.GRAD_DISTANCE_LAST), SCOPES)), log_y=True),
             "fig31_gradient_distance")
plt.show()

# %%
session.save(band_figure(report_table, f"Fig 32 · Effective β-smoothness{report_suffix}",
                         list(zip((landscape.BETA, landscape.BETA_LAST), SCOPES)), log_y=True),
             "fig32_effective_beta")
plt.show()

# %% [markdown]
# **Which scope do the report's figures resemble?** The report gives Figs 31-32 as images without numbers, so
# their scale cannot be compared here; what it describes is a shape: VGG-A + BN **above** VGG-A early in
# training and **below** it later (both figures). The table reads that shape from each scope's medians over the
# first fifth and the second half of the steps (`section.report_pattern`); the last column says whether
# these runs have the report's settings (Table 11), without which the shape does not test the report's.

# %%
# NBVAL_CHECK_OUTPUT
pattern = pd.DataFrame([
    {"figure": figure_name, "scope": scope, **section.pattern_summary(report_table, quantity),
     reading.COMPARABLE_HEADING: section.landscape_comparability(LANDSCAPE)}
    for figure_name, pairs in (("Fig 31", (landscape.GRAD_DISTANCE, landscape.GRAD_DISTANCE_LAST)),
                               ("Fig 32", (landscape.BETA, landscape.BETA_LAST)))
    for quantity, scope in zip(pairs, SCOPES)
]).set_index(["figure", "scope"])
pattern

# %% [markdown]
# The gradient distance and β are drawn on a log scale: early in training VGG-A without BN has tiny
# gradients, and β is a ratio of two small, noisy numbers.
#
# ## The paper's method (Santurkar et al. 2018, Fig. 4): bands across step sizes along the gradient
# One plain-SGD run per model at lr 0.1. Every `probe_every` steps, before the update, the step's gradient g
# is followed to w − η·g for 8 step sizes η from 0.05 to 0.4, and on the **same minibatch** we record the
# loss there (a), the gradient change ‖∇L(w − η·g) − g‖ (b), and β = max over η of that change divided by the
# distance moved η‖g‖ (c). The probes never touch the training run (parameters, BN statistics, RNG state).

# %%
etas = landscape.paper_etas(PAPER_LR)
paper_table = section.landscape_tables(session.store, LANDSCAPE, "paper", PROBE_EVERY)

# %%
paper_suffix = (f"\npaper's method: lr {PAPER_LR:g}, band over η ∈ [{min(etas):.2g}, {max(etas):.2g}], "
                f"probe every {PROBE_EVERY} steps (profile {session.profile.name})")
session.save(band_figure(paper_table, f"Paper Fig. 4a · Loss along the gradient{paper_suffix}",
                         [(landscape.LOSS, None)], plateau=True), "paper_fig4_a_loss_landscape")
plt.show()

# %%
session.save(band_figure(paper_table, f"Paper Fig. 4b · Gradient predictiveness ‖∇L(w − ηg) − g‖{paper_suffix}",
                         [(landscape.GRAD_DISTANCE, None)], log_y=True), "paper_fig4_b_gradient_predictiveness")
plt.show()

# %%
session.save(band_figure(paper_table, f"Paper Fig. 4c · Effective β-smoothness (max over η){paper_suffix}",
                         [(landscape.BETA, None)], log_y=True), "paper_fig4_c_effective_beta")
plt.show()

# %% [markdown]
# ## Summaries read from the stored tables
# The report gives its landscape results only as figures, so there is no report number to put beside these.
#
# **How long each run sits on the ln 10 plateau**: the first step whose loss falls more than 0.1 below
# ln 10 = 2.303 (report's method: the window mean; paper's method: the training loss of the step;
# `section.plateau_table`).

# %%
# NBVAL_CHECK_OUTPUT
section.plateau_table(report_table, paper_table)

# %% [markdown]
# **Both methods over the second half of training** (steps past the middle of the run): the mean loss, the
# mean width of the loss band (max − min across lr for the report's method, across η for the paper's), and
# the medians of the gradient distance and of β (medians, because β early on is a ratio of small numbers;
# `section.second_half_summary`).

# %%
# NBVAL_CHECK_OUTPUT
pd.concat([section.second_half_summary(report_table, "report's (consecutive minibatches)", "lr"),
           section.second_half_summary(paper_table, "paper's (same minibatch, along g)", "eta")])

# %% [markdown]
# ## Reading
#
# **What each method measures.** The report's gradient distance compares the gradients of two consecutive
# steps, computed on two *different* minibatches, so it mixes the change of the gradient along the update
# (curvature) with the minibatch-to-minibatch noise of the gradient; its β divides that by the step length,
# and its bands span learning rates, i.e. five *different trajectories*. The paper's probes keep the minibatch
# fixed and move only along the update direction, so the gradient change and β measure the curvature the
# optimiser actually meets, and the band spans how far one could step from the *same* point. The two
# methods can therefore disagree; where they do, the paper's isolates curvature, while the report's mixes in
# noise that BatchNorm can increase (each example's output depends on the rest of the
# batch), which is one candidate explanation for the report's observation that VGG + BN shows the *larger*
# gradient distance early in training (its Figs 31-32). A second property of the report's β: where the
# gradient distance is mostly minibatch noise, it hardly depends on the learning rate, so β = distance /
# (lr · ‖g‖) differs across learning rates by the factor 1/lr alone and the band spans about max lr / min lr
# (3x for 0.05-0.15) by construction. Absolute gradient sizes also differ between the two networks (BN makes
# the loss invariant to the scale of the weights before it), so compare each network's band over time, and
# the two networks' β (a ratio) rather than their raw gradient distances.
#
# **The early plateau.** VGG-A without BN at these learning rates starts on the plateau near ln 10 = 2.303
# (uniform predictions) and can stay there for hundreds of steps (the plateau table above says for how long
# here). On the plateau every learning rate gives nearly the same loss and tiny gradients, so the
# across-lr bands of the plain network are narrow, i.e. look "smoother" than the BN network's, because
# nothing is being learned; and β there is a ratio of two small numbers. The early part of Figs 30-32 says
# little about smoothness; compare the models after both have left the plateau (the second-half table).
#
# **What our numbers show at this profile.** At `smoke` (256 training images, batch 16, 2 epochs, i.e. 32
# steps per run, gap 2, a probe every 4 steps) nothing beyond "every path runs, caches and plots"
# can be read from these tables and figures: the runs are far too short to leave the plateau, and one seed
# at that size is noise. The comparison with the report (BN: narrower loss band, smaller gradient distance and
# β once training is under way) needs the `quick` or `full` execution, which uses the report's 20 epochs,
# batch 128, gap 30 and all 50,000 images.
