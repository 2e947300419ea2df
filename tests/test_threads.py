"""The stages' thread policy: OMP_NUM_THREADS wins; otherwise the cores other processes leave free."""

from __future__ import annotations

import os

import pytest

from pipeline.core.cli import thread_count


def test_omp_num_threads_wins() -> None:
    assert thread_count({"OMP_NUM_THREADS": "3"}) == (3, "OMP_NUM_THREADS")


@pytest.mark.parametrize("value", ["", "0", "two"])
def test_an_unusable_omp_num_threads_falls_back_to_the_free_cores(value: str) -> None:
    threads, why = thread_count({"OMP_NUM_THREADS": value})
    assert 1 <= threads <= len(os.sched_getaffinity(0)) and "cores" in why


def test_busy_cores_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert thread_count({}) == (1, "2 cores, about 1 busy with other work")
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 0.0, 0.0))
    assert thread_count({})[0] == 1, "never fewer than one"
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert thread_count({})[0] == 2
