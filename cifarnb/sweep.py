"""Fill the results store for one report section without Jupyter: ``cifarnb sweep --section zoo --profile quick``.

Each section trains exactly the runs its notebook asks for (same configs, same keys), so a store filled here
(for example on a GPU machine, copied back as small JSON files) makes the notebook render without retraining.
Like the notebooks, a sweep loads finished runs and resumes interrupted ones, so it can be stopped and rerun.
"""

from __future__ import annotations

from typing import Callable

from . import experiments, recipes, reference
from .features import stored_feature_maps, stored_test_image
from .profiles import Profile
from .results import ResultStore

SECTIONS = ("ablations", "zoo", "resnet9", "features", "vgg", "landscape")


def run_section(section: str, profile: Profile, store: ResultStore, seeds=None, device: str = "auto",
                log: Callable[[str], None] = print) -> None:
    """Train (or load) every run of ``section`` at ``profile`` into ``store``."""
    if section not in SECTIONS:
        raise ValueError(f"section={section!r} is not one of {', '.join(SECTIONS)}")
    seeds = tuple(profile.seeds if seeds is None else seeds)
    grid = dict(seeds=seeds, device=device, log=log)
    if section == "ablations":
        for group in reference.ABLATION_FIELDS:
            experiments.run_grid(store, experiments.ablation_configs(profile, group), **grid)
    elif section == "zoo":
        experiments.run_grid(store, {m: experiments.zoo_config(profile, m) for m in profile.zoo_models}, **grid)
    elif section == "resnet9":
        experiments.run_grid(store, experiments.trick_ladder(profile), **grid)
        experiments.run_grid(store, experiments.resnet9_configs(profile), **grid)
        experiments.run_grid(store, {"fast recipe": recipes.fast_for_profile(profile)}, **grid)
    elif section == "features":
        image, _ = stored_test_image(store)
        for label, config in experiments.feature_map_configs(profile, seeds[0]).items():
            _, how = stored_feature_maps(store, config.replace(device=device), image)
            log(f"{label}: feature maps {how}")
    elif section == "vgg":
        experiments.run_grid(store, experiments.vgg_configs(profile), **grid)
    elif section == "landscape":
        config = experiments.landscape_config(profile)
        experiments.landscape_tables(store, config, "report", device=device, log=log)
        experiments.landscape_tables(store, config, "paper", device=device, probe_every=profile.probe_every, log=log)
