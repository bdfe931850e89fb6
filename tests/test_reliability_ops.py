"""Issue 46, the operational findings: search workers that repeated each other's trials,
Lightning values that failed (or hung) only after the run folder existed, OSErrors as
tracebacks, a run called finished before its files were written, and predict.py holding
its whole input in memory. Each test was red before its fix."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import pytest

import tune
from tweetcls.search_space import suggest

SPACE = {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
         "lora_r": {"type": "categorical", "choices": [2, 4]}}


# --- 1. search workers never repeat each other's trials ------------------------------------------

def _worker(storage: str, seed: int = 0):
    """What one tune.py process holds: its own sampler on the shared study."""
    import optuna

    return optuna.create_study(study_name="s", storage=storage, direction="maximize", load_if_exists=True,
                               sampler=tune.make_sampler(seed))


def _trial(study) -> dict:
    trial = study.ask()
    params = suggest(trial, SPACE)
    study.tell(trial, params["lr"])
    return params


def test_two_workers_on_one_sqlite_study_never_draw_the_same_point(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first, second = _worker(storage), _worker(storage)  # same --sampler-seed, as two workers are started
    points = [_trial(first), _trial(second), _trial(first), _trial(second)]
    assert len({tuple(sorted(p.items())) for p in points}) == 4, points


def test_a_restarted_worker_does_not_repeat_trial_0(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    trial_0 = _trial(_worker(storage))
    after_restart = _trial(_worker(storage))  # a new process: a new sampler on the same study
    assert after_restart != trial_0


def test_the_same_seed_repeats_a_study_and_another_seed_does_not(tmp_path):
    def first_points(name: str, seed: int) -> list[dict]:
        study = _worker(f"sqlite:///{tmp_path / name}", seed)
        return [_trial(study) for _ in range(3)]

    assert first_points("a.db", 0) == first_points("b.db", 0)
    assert first_points("c.db", 1) != first_points("d.db", 0)
