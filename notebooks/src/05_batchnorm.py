# %% [markdown]
# # 05 · BatchNorm on VGG-A: accuracy and the optimisation landscape
#
# Report section 2 (Tables 10-11, Figs 28-32), which follows Santurkar et al. 2018, *How Does Batch
# Normalization Help Optimization?* Two parts, each as the report's code (`VGG_BatchNorm/`, the course template)
# runs it:
#
# * **2.1, Fig 28** (`VGG_acc.py`): VGG-A with and without BatchNorm (the template's `vgg.py`: no conv bias in
#   VGG-A's stages 3-5, no bias before any BN), plain SGD (lr 0.1, no momentum, no weight decay, no lr decay),
#   batch 128, 20 epochs, the template's data (no augmentation, pixels to [-1, 1]) and Xavier-normal
#   initialisation; the test accuracy evaluated every 100 steps and the **best** printed, which is the number the
#   report quotes (79.5% vs 82.8%, one run each). Here each runs over several seeds: mean ± std, then the
#   standard error of the mean.
# * **2.2, Figs 30-32**: how smooth the landscape is that SGD walks on, measured three ways:
#   1. **the report's method, as its code measures it** (`VGG_Loss_Landscape.py`): one plain-SGD run per learning
#      rate in {0.05, 0.075, 0.1, 0.125, 0.15}, trained one after another from one seed (2023; each rate its own
#      initialisation); every `gap` = 30 steps the last linear layer's weight and gradient are sampled: the loss
#      is the mean over the 30 steps, the gradient distance the change of that gradient since the last sample,
#      β = that distance / (the weight's change + 1e-3); loss and distance as min/max bands **across learning
#      rates**, β as their **maximum**;
#   2. **one-step differences** (our earlier reading of the text, kept as an alternative): the same windows,
#      with the distance between the gradients of two consecutive steps on all parameters (and on the last
#      layer), β over the weight change of that step (report eq. 6), all rates from the same initial weights;
#   3. **the paper's method** (its Fig. 4): one run at lr 0.1; at a probed step, walk from the weights along
#      the step's gradient with step sizes η ∈ [0.05, 0.4] and, on the **same minibatch**, record the loss and
#      the gradient change there; the band is the min/max **across η**, and β is the largest gradient change per
#      unit distance moved.
#
# `cifarnb.landscape` holds the three measurements (its module docstring defines every quantity exactly); this
# notebook only runs them through the results store and plots them. The landscape runs fix their own seed, as the
# report and the paper do: the spread in their bands comes from the learning rates (report) or the step sizes
# (paper), not from seeds.
#
# Runs come from the results store: re-executing loads finished runs and resumes interrupted ones; each
# landscape table is cached (the report's method one per model, the others one per model and learning rate).

# %% tags=["parameters"]
profile = "smoke"  # smoke | quick | full
seeds = None  # None: the profile's seeds, e.g. [0, 1, 2] (accuracy runs; the landscape runs use seed 0)
data_root = None  # folder holding cifar-10-batches-py/ (None: $CIFARNB_DATA, then ./data)
results_dir = "../results"
figures_dir = "../figures"
device = "auto"
train_missing = True  # False: show only what the store holds (a run it lacks shows as not run)
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
from cifarnb.study.fast_paths import report_precision
from cifarnb.study.sections import batchnorm as section

session = notebook.setup("05_batchnorm", globals())
# Built here so that a bad learning-rate list or gap fails in this cell (the tables' keys leave the device out).
LANDSCAPE = section.landscape_config(session.profile)
PAPER_LR = landscape.PAPER_LEARNING_RATE  # always 0.1, as in the paper
PROBE_EVERY = session.profile.probe_every


# %% [markdown]
# ## What is real here
# Which of this section's runs the store holds at this profile and seeds, and what fills the rest. A cell whose
# runs are missing reads *not run*; smoke runs (what the tests execute) are never shown beside the report's numbers.

# %%
session.coverage()

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
        ("2.1 accuracy", "data pipeline", "the course template's (data/loaders.py)",
         f"augment={vgg.augment}, normalization={vgg.normalization!r}"),
        ("2.1 accuracy", "initialisation, biases", "the course template's (utils/nn.py, models/vgg.py)",
         f"{vgg.model_options.get('init', 'default')}, {vgg.model_options.get('bias', 'all')}"),
        ("2.1 accuracy", "accuracy quoted", "best of evaluations every 100 steps (VGG_acc.py)",
         f"best of evaluations every {vgg.eval_every_steps} steps; the last epoch's beside it"),
        ("2.2 landscape", "optimizer", f"{land_ref['optimizer']} (no {', no '.join(land_ref['no'])})",
         "plain SGD (no momentum, weight decay, lr decay or dropout)"),
        ("2.2 landscape", "epochs", land_ref["epochs"], LANDSCAPE.epochs),
        ("2.2 landscape", "batch size", land_ref["batch_size"], LANDSCAPE.batch_size),
        ("2.2 landscape", "learning rates (report's method)", str(land_ref["learning_rates"]),
         str(list(LANDSCAPE.learning_rates))),
        ("2.2 landscape", "gap (steps per window)", land_ref["gap_steps"], LANDSCAPE.gap),
        ("2.2 landscape", "train images", 50000, LANDSCAPE.n_train or 50000),
        ("2.2 landscape", "seed", "2023, set once; the rates trained in sequence (VGG_Loss_Landscape.py)",
         f"{LANDSCAPE.seed}, set once per model; the rates trained in sequence"),
        ("2.2 landscape", "data pipeline, initialisation, biases", "the course template's",
         f"augment={LANDSCAPE.augment}, normalization={LANDSCAPE.normalization!r}, init={LANDSCAPE.init!r}, "
         f"bias={LANDSCAPE.bias!r}"),
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

# %% [markdown]
# The report quotes the best of the evaluations every 100 steps (VGG_acc.py prints only that); the last epoch's
# accuracy is beside it.

# %%
# NBVAL_CHECK_OUTPUT
section.accuracy_table(results, session.profile)

# %%
notebook.show_markdown(reading.cpu_rows_note(results, report_precision) or "No row here trained on a CPU.")

# %%
session.figure("fig28_vgg_accuracy", results, lambda stored: curves.learning_curves(
    stored, title=f"Fig 28 · VGG-A vs VGG-A + BN, plain SGD lr 0.1 (profile {session.profile.name}, mean and seed "
    "range)"))

# %% [markdown]
# The report reads 79.5% (VGG-A) and 82.8% (VGG-A + BN) after 20 epochs from single runs. Our columns are at
# the final epoch of this profile (the header of the index says which); only at `quick`/`full` (20 epochs,
# all 50,000 images) do they compare directly with the report's. At `smoke` (32 training images, 2 epochs)
# they only show that the pipeline runs: VGG-A without BN typically has not left chance level (10%) yet.

# %% [markdown]
# ### Earlier reading: PyTorch's default initialisation (superseded by the course template's)
# Before the template's `utils/nn.py` was read, VGG-A trained with PyTorch's default initialisation and biases on
# every layer, otherwise as above (evaluated at epoch ends only, so "best" is the best epoch). Those runs keep
# their keys. They are evidence for section 2's claim in their own right: at lr 0.1 without BN, VGG-A sat on the
# ln 10 plateau (10%, chance) for most of its 20 epochs, while VGG-A + BN from the same initialisation trained at
# once; BatchNorm made the badly scaled start trainable.

# %%
earlier_vgg = reading.stored_grid(session.store, section.earlier_vgg_configs(session.profile), session.seeds)
section.accuracy_table(earlier_vgg, session.profile, best_over="epoch ends")

# %%
session.figure("fig28_earlier_default_init", earlier_vgg, lambda stored: curves.learning_curves(
    stored, title=f"Earlier reading (superseded): Fig 28 with PyTorch's default initialisation (profile "
    f"{session.profile.name})"))

# %% [markdown]
# ## 2.2 · The report's method, as its code measures it (Figs 30-32)
# One plain-SGD run per (model, learning rate), the rates one after another from one seed, cut into windows of
# `gap` steps. Per window (plotted at its last step `s`), after the step, on the **last linear layer's weight** W
# and its gradient G:
#
# * **loss**: the mean training loss over the window's `gap` steps;
# * **gradient distance**: ‖G(s) − G(s − gap)‖₂, the change of that gradient since the last sample (30 steps
#   apart, on different minibatches and weights);
# * **β**: that distance divided by ‖W(s) − W(s − gap)‖ + 1e-3.
#
# Figs 30-31 are the min/max bands across the learning rates; Fig 32 is the maximum of β across them, as the
# code draws it.

# %%
report_table = section.landscape_tables(session.store, LANDSCAPE, "report",
                                        compute_missing=session.train_missing)

# %%
lr_text = ", ".join(f"{lr:g}" for lr in LANDSCAPE.learning_rates)
report_suffix = (f"\nreport's method (its code): lr ∈ {{{lr_text}}} in sequence, last layer every {LANDSCAPE.gap} "
                 f"steps (profile {session.profile.name})")
session.figure("fig30_loss_landscape", report_table, lambda stored: band_figure(
    stored, f"Fig 30 · Loss landscape (window mean, band over lr){report_suffix}",
    [(landscape.LOSS, None)], plateau=True))

# %%
session.figure("fig31_gradient_distance", report_table, lambda stored: band_figure(
    stored, f"Fig 31 · Gradient distance (band over lr){report_suffix}",
    [(landscape.GRAD_DISTANCE, None)], log_y=True))

# %%
session.figure("fig32_effective_beta", report_table, lambda stored: band_figure(
    stored, f"Fig 32 · Effective β-smoothness (maximum over lr){report_suffix}",
    [(landscape.BETA, None)], log_y=True, envelope="max"))

# %% [markdown]
# **Does our Fig 31-32 have the report's shape?** The report gives Figs 31-32 as images without numbers, so
# their scale cannot be compared here; what it describes is a shape: VGG-A + BN **above** VGG-A early in
# training and **below** it later (both figures). The table reads that shape from the medians over the first
# fifth and the second half of the steps (`section.report_pattern`), for the report's method and for the
# one-step differences below; the last column says whether these runs have the report's settings (Table 11),
# without which the shape does not test the report's.

# %%
one_step_table = section.landscape_tables(session.store, LANDSCAPE, "one_step",
                                          compute_missing=session.train_missing)

# %%
# NBVAL_CHECK_OUTPUT
SCOPES = {landscape.GRAD_DISTANCE: "all parameters", landscape.BETA: "all parameters",
          landscape.GRAD_DISTANCE_LAST: "last layer", landscape.BETA_LAST: "last layer"}
pattern = pd.DataFrame([
    {"figure": figure_name, "method": method, "scope": scope, **section.pattern_summary(table, quantity),
     reading.COMPARABLE_HEADING: section.landscape_comparability(LANDSCAPE)}
    for method, table, quantities in (
        ("report's (its code)", report_table, {"Fig 31": landscape.GRAD_DISTANCE, "Fig 32": landscape.BETA}),
        ("one-step differences", one_step_table, {"Fig 31": landscape.GRAD_DISTANCE, "Fig 32": landscape.BETA}),
        ("one-step differences", one_step_table, {"Fig 31": landscape.GRAD_DISTANCE_LAST,
                                                  "Fig 32": landscape.BETA_LAST}))
    for figure_name, quantity in quantities.items()
    for scope in ["last layer, sampled every gap steps" if table is report_table else SCOPES[quantity]]
]).set_index(["figure", "method", "scope"])
pattern

# %% [markdown]
# ### One-step differences (the earlier reading, an alternative)
# The same windows, each rate from the same initial weights and batch order; the gradient distance is
# ‖g(s) − g(s−1)‖₂ between two **consecutive steps** (on all parameters, report eq. 6 as written, and on the last
# layer alone), β that distance over the step's weight change (lr · ‖g(s−1)‖; + 1e-3 on the last layer).

# %%
one_step_suffix = f"\none-step differences: band over lr ∈ {{{lr_text}}} (profile {session.profile.name})"
session.figure("one_step_gradient_distance", one_step_table, lambda stored: band_figure(
    stored, f"Gradient distance of consecutive steps{one_step_suffix}",
    [(landscape.GRAD_DISTANCE, "all parameters (report eq. 6)"),
     (landscape.GRAD_DISTANCE_LAST, "last linear layer")], log_y=True))

# %%
session.figure("one_step_effective_beta", one_step_table, lambda stored: band_figure(
    stored, f"Effective β-smoothness of consecutive steps{one_step_suffix}",
    [(landscape.BETA, "all parameters (report eq. 6)"),
     (landscape.BETA_LAST, "last linear layer")], log_y=True))

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
paper_table = section.landscape_tables(session.store, LANDSCAPE, "paper", PROBE_EVERY,
                                       compute_missing=session.train_missing)

# %%
paper_suffix = (f"\npaper's method: lr {PAPER_LR:g}, band over η ∈ [{min(etas):.2g}, {max(etas):.2g}], "
                f"probe every {PROBE_EVERY} steps (profile {session.profile.name})")
session.figure("paper_fig4_a_loss_landscape", paper_table, lambda stored: band_figure(
    stored, f"Paper Fig. 4a · Loss along the gradient{paper_suffix}",
    [(landscape.LOSS, None)], plateau=True))

# %%
session.figure("paper_fig4_b_gradient_predictiveness", paper_table, lambda stored: band_figure(
    stored, f"Paper Fig. 4b · Gradient predictiveness ‖∇L(w − ηg) − g‖{paper_suffix}",
    [(landscape.GRAD_DISTANCE, None)], log_y=True))

# %%
session.figure("paper_fig4_c_effective_beta", paper_table, lambda stored: band_figure(
    stored, f"Paper Fig. 4c · Effective β-smoothness (max over η){paper_suffix}",
    [(landscape.BETA, None)], log_y=True))

# %% [markdown]
# ## Summaries read from the stored tables
# The report gives its landscape results only as figures, so there is no report number to put beside these.
#
# **How long each run sits on the ln 10 plateau**: the first step whose loss falls more than 0.1 below
# ln 10 = 2.303 (report's method: the window mean; paper's method: the training loss of the step;
# `section.plateau_table`).

# %%
# NBVAL_CHECK_OUTPUT
plateau = section.plateau_table(report_table, paper_table)
plateau.index.name = f"model (profile {session.profile.name})"
plateau[reading.COMPARABLE_HEADING] = section.landscape_comparability(LANDSCAPE)
plateau

# %% [markdown]
# **Both methods over the second half of training** (steps past the middle of the run): the mean loss, the
# mean width of the loss band (max − min across lr for the report's method, across η for the paper's), and
# the medians of the gradient distance and of β (medians, because β early on is a ratio of small numbers;
# `section.second_half_summary`).

# %%
# NBVAL_CHECK_OUTPUT
second_half = pd.concat([
    section.second_half_summary(report_table, "report's (its code: last layer, 30 steps apart)", "lr"),
    section.second_half_summary(one_step_table, "one-step differences (consecutive minibatches)", "lr"),
    section.second_half_summary(paper_table, "paper's (same minibatch, along g)", "eta")])
second_half.index.names = [f"method (profile {session.profile.name})", "model"]
second_half[reading.COMPARABLE_HEADING] = section.landscape_comparability(LANDSCAPE)
second_half

# %% [markdown]
# ## Reading
#
# **What each method measures.** The report's gradient distance compares the last layer's gradients 30 steps
# apart (its code), and the one-step differences the gradients of two consecutive steps: either way gradients
# computed on *different* minibatches, so they mix the change of the gradient along the way (curvature) with the
# minibatch-to-minibatch noise of the gradient; β divides that by how far the weights moved, and the bands span
# learning rates, i.e. five *different trajectories* (in the code's method also five different initialisations). The paper's probes keep the minibatch
# fixed and move only along the update direction, so the gradient change and β measure the curvature the
# optimiser actually meets, and the band spans how far one could step from the *same* point. The two
# methods can therefore disagree; where they do, the paper's isolates curvature, while the report's mixes in
# noise that BatchNorm can increase (each example's output depends on the rest of the
# batch), which is one candidate explanation for the report's observation that VGG + BN shows the *larger*
# gradient distance early in training (its Figs 31-32). A second property of the one-step β: where the
# gradient distance is mostly minibatch noise, it hardly depends on the learning rate, so β = distance /
# (lr · ‖g‖) differs across learning rates by the factor 1/lr alone and the band spans about max lr / min lr
# (3x for 0.05-0.15) by construction; the code's β, with + 1e-3 under a weight change of 30 steps, is bounded by
# it instead when the weights barely move. Absolute gradient sizes also differ between the two networks (BN makes
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
