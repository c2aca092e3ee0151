"""The attempt guard: a unit may start max_attempts times; the next start is refused with the
fix, and a registry that cannot be reached never fails the work it counts.

The registry is a stand-in and ray.get is replaced, so no Ray is started."""

from __future__ import annotations

import logging

import pytest

from sarashina_batch.stages.guard import UNGUARDED, AttemptGuard


class Registry:
    """Counts starts per (stage, unit) as run/attempts.py's actor does; `remote` returns the count."""

    def __init__(self, fail=False):
        self.starts, self.fail = {}, fail
        registry = self

        class Begin:
            @staticmethod
            def remote(stage, unit):
                if registry.fail:
                    raise ConnectionError("registry actor is gone")
                registry.starts[(stage, unit)] = registry.starts.get((stage, unit), 0) + 1
                return registry.starts[(stage, unit)]

        class Finish:
            @staticmethod
            def remote(stage, unit):
                if registry.fail:
                    raise ConnectionError("registry actor is gone")
                registry.finished.append((stage, unit))

        self.begin, self.finish, self.finished = Begin, Finish, []


@pytest.fixture
def plain_ray_get(monkeypatch):
    ray = pytest.importorskip("ray")
    calls = []

    def get(ref, timeout=None):
        calls.append(timeout)
        return ref

    monkeypatch.setattr(ray, "get", get)
    return calls


def test_unguarded_never_refuses_and_never_touches_ray():
    assert all(UNGUARDED.refusal(stage, "u") is None for stage in ("read", "embed", "write") for _ in range(5))


def test_a_unit_is_refused_once_it_started_more_than_the_bound(plain_ray_get):
    guard = AttemptGuard(Registry(), max_attempts=2)
    answers = [guard.refusal("embed", "unit-a") for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None
    assert "started 2 times" in answers[2] and "compute.max_unit_attempts=2" in answers[2]
    assert "input.rows_per_unit" in answers[2], "the refusal names a fix"
    assert plain_ray_get and all(t is not None for t in plain_ray_get), "the registry is never waited on forever"


def test_units_are_counted_apart(plain_ray_get):
    guard = AttemptGuard(Registry(), max_attempts=1)
    assert guard.refusal("read", "unit-a") is None
    assert guard.refusal("read", "unit-b") is None
    assert guard.refusal("read", "unit-a") is not None


def test_an_unreachable_registry_lets_the_unit_run_and_says_so(plain_ray_get, caplog):
    guard = AttemptGuard(Registry(fail=True), max_attempts=1)
    with caplog.at_level(logging.WARNING, logger="sarashina_batch.stages.guard"):
        assert guard.refusal("write", "unit-z") is None
    assert "unit-z goes on unguarded" in caplog.text and "registry actor is gone" in caplog.text


def test_finished_units_are_told_to_the_registry_and_never_fail_the_work(plain_ray_get, caplog):
    registry = Registry()
    AttemptGuard(registry, max_attempts=1).finished("read", "unit-a")
    assert registry.finished == [("read", "unit-a")]
    assert not plain_ray_get, "not waited for"
    UNGUARDED.finished("read", "unit-a")  # nothing to tell
    with caplog.at_level(logging.WARNING, logger="sarashina_batch.stages.guard"):
        AttemptGuard(Registry(fail=True), max_attempts=1).finished("read", "unit-b")
    assert "unit-b is not marked finished" in caplog.text


def test_the_registry_counts_the_starts_that_did_not_finish():
    """A read task does the units cut from one row group in a row; when one of them kills its
    worker, Ray runs the task again, and the units it had finished start again: those restarts
    are not held against them, the dying unit's are (run/attempts.py's registry)."""
    from sarashina_batch.run.attempts import UnitStarts

    starts = UnitStarts()
    for _ in range(3):  # three tries of one task: unit-a finishes each time, unit-b kills it
        assert starts.begin("read", "unit-a") == 1
        starts.finish("read", "unit-a")
        starts.begin("read", "unit-b")
    assert starts.begin("read", "unit-a") == 1
    assert starts.begin("read", "unit-b") == 4
    assert starts.restarted() == {"read": 2}, "the log still says what Ray re-ran"
