"""Notebook 04's feature-map statistics on small made-up activations whose answers are known by construction."""

import math

import numpy as np
import pytest

from cifarnb.study.sections import feature_maps as feature_maps_section


def activation(*channels: list[list[float]]) -> np.ndarray:
    return np.array(channels, dtype=np.float32)


def test_dead_channels_activity_and_mean():
    maps = activation([[0, 0], [0, 0]],  # dead: all zero
                      [[5, 5], [5, 5]],  # dead too: constant, though not zero
                      [[0, 1], [2, 3]],
                      [[3, 2], [1, 0]])
    statistics = feature_maps_section.feature_map_statistics(maps)
    assert (statistics.channels, statistics.height, statistics.width) == (4, 2, 2)
    assert statistics.dead_fraction == 0.5
    assert statistics.mean_activation == pytest.approx((0 + 20 + 6 + 6) / 16)
    assert statistics.active_fraction == pytest.approx(10 / 16)  # four fives and three non-zeros in each ramp


def test_correlation_between_live_channels_and_near_copies():
    ramp = [[0, 1], [2, 3]]
    maps = activation(ramp,
                      [[0, 2], [4, 6]],  # twice the ramp: r = 1
                      [[3, 2], [1, 0]],  # the ramp reversed: r = -1, so |r| = 1
                      [[1, 0], [0, 1]])  # uncorrelated with the ramp: r = 0
    statistics = feature_maps_section.feature_map_statistics(maps)
    assert statistics.dead_fraction == 0.0
    assert statistics.mean_abs_correlation == pytest.approx(3 / 6)  # 6 pairs: three at |r| 1, three at 0
    assert statistics.near_copy_fraction == pytest.approx(3 / 4)


def test_a_range_just_under_the_threshold_is_dead():
    maps = activation([[0, 0.5 * feature_maps_section.DEAD_RANGE]], [[0, 2 * feature_maps_section.DEAD_RANGE]])
    assert feature_maps_section.feature_map_statistics(maps).dead_fraction == 0.5


def test_correlations_need_two_live_channels():
    statistics = feature_maps_section.feature_map_statistics(activation([[0, 0], [0, 0]], [[0, 1], [2, 3]]))
    assert math.isnan(statistics.mean_abs_correlation) and math.isnan(statistics.near_copy_fraction)
    assert statistics.row()["mean |r| between channels"] == "nan"


def test_row_and_table_format_as_the_notebook_shows_them():
    maps = activation([[0, 0], [0, 0]], [[0, 1], [2, 3]], [[0, 2], [4, 6]])
    row = feature_maps_section.feature_map_statistics(maps).row()
    assert row == {"channels": 3, "map size (px)": "2x2", "dead channels (%)": "33.3", "mean activation": "1.500",
                   "active pixels (%)": "50.0", "mean |r| between channels": "1.000",
                   "channels with a near-copy (%)": "100.0"}
    table = feature_maps_section.feature_map_table({"A": {"conv1": maps, "conv2": maps[:2]}, "B": {"conv1": maps}}, ("conv1",))
    assert list(table.index) == [("A", "conv1"), ("B", "conv1")]
    assert table.loc[("A", "conv1"), "dead channels (%)"] == "33.3"


def test_a_map_without_channels_height_and_width_is_refused():
    with pytest.raises(ValueError, match="expected channels x height x width"):
        feature_maps_section.feature_map_statistics(np.zeros((4, 4)))
