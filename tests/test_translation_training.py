"""Tests of the learning-rate schedules of lib/translation_training.py, in closed form and in a tiny training run."""
import math
import os
import sys

import pytest

from lib import translation_training
from lib.checkpoint import load_checkpoint
from lib.translation_training import TrainConfig, learning_rate
from tests.test_distributed import tiny_config


def test_inverse_sqrt_warms_up_linearly_then_decays_with_the_square_root():
    config = TrainConfig(lr=2e-3, warmup_steps=400)
    assert learning_rate(100, config) == pytest.approx(0.5e-3)
    assert learning_rate(400, config) == pytest.approx(2e-3)
    assert learning_rate(1600, config) == pytest.approx(1e-3)  # 2e-3 * sqrt(400 / 1600)
    assert learning_rate(0, config) == pytest.approx(2e-3 / 400)  # step 0 counts as step 1


def test_linear_warms_up_then_falls_to_zero_at_max_steps():
    config = TrainConfig(lr=1e-3, warmup_steps=100, lr_schedule="linear", max_steps=1100)
    assert learning_rate(50, config) == pytest.approx(0.5e-3)
    assert learning_rate(100, config) == pytest.approx(1e-3)
    assert learning_rate(600, config) == pytest.approx(0.5e-3)  # half way from the warm-up's end to max_steps
    assert learning_rate(1050, config) == pytest.approx(0.05e-3)
    assert learning_rate(1100, config) == 0.0
    assert learning_rate(1200, config) == 0.0  # never negative past max_steps


def test_schedules_without_warm_up_start_at_the_peak():
    assert learning_rate(1, TrainConfig(lr=1e-3, warmup_steps=0)) == pytest.approx(1e-3)
    linear = TrainConfig(lr=1e-3, warmup_steps=0, lr_schedule="linear", max_steps=10)
    assert [learning_rate(step, linear) for step in (1, 5, 10)] == pytest.approx([0.9e-3, 0.5e-3, 0.0])


def test_an_unknown_schedule_is_refused_when_the_config_is_made():
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        learning_rate(10, TrainConfig(lr_schedule="cosine"))


@pytest.mark.parametrize("schedule", ["inverse-sqrt", "linear"])
def test_a_run_sets_the_optimizers_rate_from_its_schedule(tmp_path, single_process, schedule):
    """After max_steps the optimizer holds the rate of the last step: 0 for linear, lr * sqrt(warmup / 6) else."""
    config = tiny_config(tmp_path, lr_schedule=schedule, max_steps=6, eval_every=6)
    translation_training.train(config, progress=False)
    state = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    expected = 0.0 if schedule == "linear" else 3e-3 * math.sqrt(2 / 6)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(expected)
    assert state["config"]["lr_schedule"] == schedule


def test_resuming_keeps_the_runs_schedule(tmp_path, single_process):
    config = tiny_config(tmp_path, lr_schedule="linear", max_steps=4, eval_every=4)
    translation_training.train(config, progress=False)
    translation_training.train(config, resume=True, progress=False,
                               overrides={"lr_schedule": "inverse-sqrt", "max_steps": 8})
    state = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    assert state["step"] == 8 and state["config"]["lr_schedule"] == "linear"
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
