# %% [markdown]
# # 04 · What the first two convolutions see: FastResNet9, ResNet9 and ResNet18
#
# Report section 1.5 (Figs 20-26). The report feeds one 32x32 test image, a cat (Fig 20), to its trained
# FastResNet9, ResNet9 and ResNet18 and shows the feature maps of each model's first two convolution layers
# (Figs 21-26). It finds FastResNet9's maps *less interpretable* than the other two (outlines, highlights and
# the head's curvature are clearer in ResNet9 and ResNet18) and guesses that FastResNet9's features are more
# compact, with less redundancy.
#
# Here the same image (row 0 of the official test set) goes through the three models of notebook 03's Tables 8-9
# (FastResNet9, ResNet9 and the model zoo's ResNet18 trained as long) at the same profile, first seed.
# Beside the pictures, a few numbers computed from the maps (dead channels, mean activation, how similar the
# channels are to one another) make the comparison checkable.
#
# Runs come from the results store: re-executing loads finished runs and resumes interrupted ones. The feature
# maps themselves are stored too (`arrays/` in the store), so a machine with only the committed store (no
# weights) redraws these figures without retraining; if notebook 03 did not run into this store, this
# notebook trains the three models itself.

# %% tags=["parameters"]
profile = "smoke"  # smoke | quick | full
seeds = None  # None: the profile's seeds; the first one's models are shown
data_root = None  # folder holding cifar-10-batches-py/ (None: $CIFARNB_DATA, then ./data)
results_dir = "../results"
figures_dir = "../figures"
device = "auto"
train_missing = True  # False: show only what the store holds (a run it lacks shows as not run)
n_train = None  # None: the profile's subset size (None in quick/full: all 50,000)
n_test = None

# %%
import matplotlib.pyplot as plt
import pandas as pd

from cifarnb import data, feature_maps
from cifarnb.plots import curves
from cifarnb.study import notebook, reading
from cifarnb.study.fast_paths import evidence_for, report_precision
from cifarnb.study.sections import feature_maps as section

session = notebook.setup("04_feature_maps", globals())
SEED = session.seeds[0]


# %% [markdown]
# ## What is real here
# Which of this section's runs the store holds at this profile and seeds, and what fills the rest. A cell whose
# runs are missing reads *not run*; smoke runs (what the tests execute) are never shown beside the report's numbers.

# %%
session.coverage()

# %% [markdown]
# ## The three models at this profile
# The three runs of notebook 03's Tables 8-9. Its ResNet18 is the zoo's (notebook 02, Table 7: lr 0.1) trained as
# long as the two ResNet9s: the zoo's own run at `full`, where both train 200 epochs; at `quick` 10 epochs where
# the zoo trains 25, so the three models compared here trained equally long. Only the first seed's model is shown,
# as the report shows one model.

# %%
# NBVAL_CHECK_OUTPUT
configs = section.feature_map_configs(session.profile, SEED)
shown = ["model", "model_options", "epochs", "batch_size", "lr", "label_smoothing", "tta_flip", "n_train",
         "n_test", "seed"]
overview = pd.DataFrame({label: {name: str(getattr(config, name)) for name in shown}
                         for label, config in configs.items()})
overview.loc["run key"] = [config.key() for config in configs.values()]
overview

# %% [markdown]
# ## Fig 20 · The image

# %%
# Kept in the store beside the maps, so the figures redraw without the data set.
image, label = feature_maps.stored_test_image(session.store, section.IMAGE_ROW, session.profile.data_root)
figure, ax = plt.subplots(figsize=(3.2, 3.4))
ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
ax.set_title(f"test image {section.IMAGE_ROW}: {data.CLASSES[label]}\n(32x32 px, shown enlarged)")
ax.set_axis_off()
session.save(figure, "test_image")

# %% [markdown]
# ## Feature maps, from the store or from the trained models
# For each model the maps of its two layers are computed once (training or loading the model) and stored;
# the printed line says which happened.

# %%
maps = {}
for label, config in configs.items():
    found, how = feature_maps.stored_feature_maps(session.store, config, image, section.IMAGE_ROW,
                                                  compute_missing=session.train_missing,
                                                  evidence=evidence_for(config))
    print(f"{label}: maps {how}" + ("" if found is None else "; " + ", ".join(
        f"{layer} {'x'.join(map(str, found[layer].shape))}" for layer in section.LAYERS)))
    if found is not None:
        maps[label] = found

# %%
trained = reading.stored_grid(session.store, configs, [SEED])
notebook.show_markdown(reading.cpu_rows_note(trained, report_precision) or "No model here trained on a CPU.")


# %% [markdown]
# ## Figs 21-26 · The first two layers of each model
# Each panel is one channel, scaled to its own range (so a nearly constant channel still shows a pattern:
# the table below says which channels are dead). At most the first 64 channels are shown. ResNet9 and
# FastResNet9 pool in their second layer (16x16 px); ResNet18's second layer keeps 32x32 px.

# %%
for (label, layer), number in section.FIGURE_NUMBERS.items():
    session.figure(f"{configs[label].model}_{layer}", maps.get(label, {}).get(layer),
                   lambda stored: curves.feature_map_grid(stored, f"Fig {number}: {label}, {layer} (profile "
                                                          f"{session.profile.name}, {configs[label].epochs} epochs)"))

# %% [markdown]
# ## The maps in numbers
# Per model and layer, from the stored maps: a channel is **dead** when its map is constant over the image
# (max − min below 1e-3, e.g. all zero after ReLU); **active pixels** is the share of values above zero;
# **mean |r| between channels** is the mean absolute Pearson correlation between the maps of every pair of
# non-dead channels, and **channels with a near-copy** the share of channels whose map correlates at
# |r| > 0.9 with another's: two measures of the redundancy the report suspects in ResNet9 and ResNet18.

# %%
# NBVAL_CHECK_OUTPUT
table = section.feature_map_table({label: maps.get(label) for label in configs}, section.LAYERS, configs)
table.index.names = [f"model (profile {session.profile.name}, seed {SEED})", "layer"]
table

# %% [markdown]
# ## Reading
# What these pictures can show is what three particular trained networks do with **one** image: which
# channels respond to edges, colour blobs or the background, and whether some are dead or copies of others.
# They cannot show that one architecture "learns less interpretable features" in general: that would need
# many images, several seeds per model (channels come in an arbitrary order and start from a random
# initialisation, so two seeds of one model give different-looking grids), and a measure of interpretability
# rather than a look. The comparison also mixes in design differences that have nothing to
# do with what was learnt: FastResNet9 pools *before* BatchNorm and activation, so its second layer is a
# pooled 16x16 map normalised afterwards, while ResNet18's second layer is an unpooled 32x32 map; the models
# have different activations (GELU in the ResNet9s, ReLU in ResNet18, so "dead" means something else in
# each), and were trained with different recipes (label smoothing in FastResNet9 only). The report's guess
# that FastResNet9's features are "more compact, with less redundancy" is testable with the correlation
# columns above: a lower mean |r| and fewer near-copies would support it, on this one image.
#
# At the `smoke` profile the models saw a few dozen images for a few epochs, so their maps are close to
# those of the random initialisation: the figures and the table only show that the pipeline works.
