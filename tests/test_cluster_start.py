"""Starting a local Ray instance: a start-up that times out on a busy machine is tried again, saying so.

Ray itself is stood in for: the retry concerns what ``ray.init`` raises, not a cluster (tests/test_cluster.py runs
a real one)."""

from __future__ import annotations

import pytest

pytest.importorskip("psutil")

from cifarnb.study.cluster import START_TRIES, _start_local  # noqa: E402

TIMEOUT = Exception("The current node timed out during startup. This could happen because some of the raylet "
                    "failed to startup or the GCS has become overloaded.")


class FakeRay:
    """``init`` raises the given errors in turn, then starts."""

    def __init__(self, *errors: Exception):
        self.errors, self.inits, self.shutdowns = list(errors), 0, 0

    def init(self, **options):
        self.inits += 1
        if self.errors:
            raise self.errors.pop(0)

    def shutdown(self):
        self.shutdowns += 1


def test_a_start_up_timeout_is_tried_again_with_one_line_saying_so():
    ray, lines = FakeRay(TIMEOUT), []
    _start_local(ray, num_cpus=1, log=lines.append)
    assert ray.inits == 2 and ray.shutdowns == 1
    assert lines == [f"Ray's local instance did not start in time (The current node timed out during startup); "
                     f"starting it again (2 of {START_TRIES})"]


def test_other_errors_and_the_last_timeout_are_raised():
    with pytest.raises(ValueError, match="bad address"):
        _start_local(FakeRay(ValueError("bad address")), num_cpus=1, log=lambda line: None)
    ray, lines = FakeRay(*[TIMEOUT] * START_TRIES), []
    with pytest.raises(Exception, match="timed out during startup"):
        _start_local(ray, num_cpus=1, log=lines.append)
    assert ray.inits == START_TRIES and len(lines) == START_TRIES - 1
