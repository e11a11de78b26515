"""Tests of the pieces of lib/training/loop.py's training loop: seeded tiny runs against the numbers the loop
gave before it was split into pieces, one step against a hand-written AdamW step, the stop conditions, validation and
saving, and the learning-rate schedules in closed form and in a run."""
import json
import math
import os
import sys
import time
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lib.training import loop
from lib.checkpoint import load_checkpoint
from lib.translation.tokenizer import PAD
from lib.training.config import build_model, learning_rate, TrainConfig
from lib.training.data import collate, rank_batches
from lib.training.distributed import Distributed
from lib.training.loop import start_run, stop_reason, train_step, validate_and_save, Window
from tests.helpers import tiny_config, train_recording

# The numbers of the training loop as it was before the split into pieces (commit 0d97e15, this machine, one
# thread): per-step training losses, validation losses, and the sum of |weights| of last.pth and best.pth.
GOLDEN = {
    "plain": dict(losses=[3.679795026779175, 3.534201145172119, 3.532927989959717, 3.3841280937194824,
                          3.399928569793701, 3.3296382427215576, 3.204256772994995, 3.2266480922698975],
                  valid_losses=[3.3452, 3.1163], last_abs_sum=524.1223310952937, best_abs_sum=516.405850276783),
    "mixed": dict(losses=[3.825073003768921, 3.7927932739257812, 3.6843390464782715, 3.4822888374328613,
                          3.4793379306793213, 3.3266959190368652, 3.3612380027770996, 3.255293369293213],
                  valid_losses=[3.4031, 3.1077], last_abs_sum=557.7592197659233, best_abs_sum=551.1439209381169),
}


def abs_sum(state_dict):
    return sum(value.double().abs().sum().item() for value in state_dict.values())


@pytest.mark.parametrize("name", ["plain", "mixed"])
def test_seeded_runs_give_the_numbers_of_the_loop_before_the_split(tmp_path, single_process, name):
    """'plain': the tiny run (no dropout); 'mixed': phrases sampled per epoch and dropout 0.1, so the phrase draws and
    dropout masks must be the old ones too. The recipe options at their defaults change nothing. rel 1e-5 allows
    for another CPU's float rounding; a changed batch or mask moves the losses by far more."""
    changes = dict(phrases=True, phrases_per_epoch=10, dropout=0.1) if name == "mixed" else {}
    config = tiny_config(tmp_path, **changes)
    records, steps = train_recording(config)
    golden = GOLDEN[name]
    assert [step["loss"] for step in steps] == pytest.approx(golden["losses"], rel=1e-5)
    assert [record["step"] for record in records] == [4, 8]
    assert [record["valid_loss"] for record in records] == golden["valid_losses"]
    assert abs_sum(load_checkpoint(os.path.join(config.out_dir, "last.pth"))["model"]) == pytest.approx(
        golden["last_abs_sum"], rel=1e-5)
    assert abs_sum(load_checkpoint(os.path.join(config.out_dir, "best.pth"))["model"]) == pytest.approx(
        golden["best_abs_sum"], rel=1e-5)


def test_start_run_builds_the_configured_model_at_step_0(tmp_path, single_process):
    config = tiny_config(tmp_path)
    state = start_run(config, Distributed())
    assert (state.step, state.epoch, state.batch_index, state.records, state.best_bleu) == (0, 0, 0, [], -1.0)
    torch.manual_seed(config.seed)  # the model is the first thing drawn after the run's seed
    expected = build_model(config, state.data)
    for (name, value), (_, built) in zip(expected.state_dict().items(), state.model.state_dict().items()):
        assert torch.equal(value, built), name
    assert state.optimizer.param_groups[0]["betas"] == (0.9, 0.98)
    assert os.path.isdir(config.out_dir)


def test_one_step_equals_a_hand_written_adamw_step(tmp_path, single_process):
    """train_step against the update written out: smoothed cross-entropy, gradient clipping to clip_norm, AdamW
    (bias-corrected moments, decoupled weight decay) at the schedule's rate for step 1."""
    config = tiny_config(tmp_path, clip_norm=0.5, weight_decay=0.1)
    state = start_run(config, Distributed())
    batch = rank_batches(state.data, config, 0, state.place)[0]
    before = [parameter.detach().clone() for parameter in state.model.parameters()]
    reference = build_model(config, state.data)
    reference.load_state_dict(state.model.state_dict())
    reference.train()
    source, decoder_input, decoder_target = collate(batch, "cpu")
    logits, _ = reference(source, decoder_input, src_padding_mask=source == PAD)
    loss = F.cross_entropy(logits.flatten(0, 1), decoder_target.flatten(), ignore_index=PAD, label_smoothing=0.1)
    gradients = torch.autograd.grad(loss, list(reference.parameters()), allow_unused=True)
    gradients = [torch.zeros_like(p) if g is None else g for p, g in zip(reference.parameters(), gradients)]
    norm = torch.sqrt(sum((gradient ** 2).sum() for gradient in gradients))
    scale = min(1.0, 0.5 / (norm.item() + 1e-6))
    lr = learning_rate(1, config)
    value, count = train_step(state, batch)
    assert value == pytest.approx(loss.item(), rel=1e-6)
    assert count == int((decoder_target != PAD).sum())
    assert (state.step, state.batch_index) == (1, 1)
    for old, gradient, new in zip(before, gradients, state.model.parameters()):
        gradient = gradient * scale
        m, v = 0.1 * gradient, 0.02 * gradient ** 2  # first moments after one step, betas (0.9, 0.98)
        update = (m / 0.1) / (torch.sqrt(v / 0.02) + 1e-8)
        expected = old * (1 - lr * 0.1) - lr * update
        torch.testing.assert_close(new.detach(), expected, rtol=1e-4, atol=1e-6)


def fake_state(tmp_path, step, max_steps=100):
    config = SimpleNamespace(out_dir=str(tmp_path), max_steps=max_steps)
    return SimpleNamespace(config=config, step=step, place=Distributed(), device=torch.device("cpu"))


def test_stop_reasons(tmp_path):
    never = float("inf")
    assert stop_reason(fake_state(tmp_path, 5), never) is None
    assert stop_reason(fake_state(tmp_path, 100), never) == "max_steps"
    assert stop_reason(fake_state(tmp_path, 5), time.time() - 1) == "max_minutes"
    (tmp_path / "STOP").touch()
    assert stop_reason(fake_state(tmp_path, 19), never) is None  # the file is looked for every 10 steps
    assert stop_reason(fake_state(tmp_path, 20), never) == "STOP file"
    assert stop_reason(fake_state(tmp_path, 100), time.time() - 1, interrupted=True) == "interrupted"


def test_window_averages_loss_and_counts_tokens_per_second():
    window = Window(started=time.time() - 2.0)
    window.add(3.0, 100)
    window.add(1.0, 300)
    assert window.mean_loss() == 2.0
    assert window.tokens_per_s(world_size=2) == pytest.approx(400 * 2 / 2.0, rel=0.05)
    assert Window().mean_loss() == 0.0


def test_validate_and_save_writes_the_record_and_keeps_the_best(tmp_path, single_process, monkeypatch):
    """best.pth follows the highest BLEU so far (1.0, then 0.5: kept, then 2.0: replaced); last.pth and log.jsonl
    follow every validation."""
    config = tiny_config(tmp_path, keep_snapshots=2)
    state = start_run(config, Distributed())
    scores = iter([1.0, 0.5, 2.0])
    monkeypatch.setattr(loop, "validate",
                        lambda *args: {"valid_loss": 3.0, "valid_bleu": next(scores), "valid_chrf": 9.0})
    batches = rank_batches(state.data, config, 0, state.place)
    best_steps = []
    for index in range(3):
        window = Window()
        window.add(*train_step(state, batches[index]))
        record = validate_and_save(state, window)
        assert record == {"step": index + 1, "epoch": 0, "minutes": record["minutes"],
                          "train_loss": round(window.mean_loss(), 4), "tokens_per_s": record["tokens_per_s"],
                          "valid_loss": 3.0, "valid_bleu": [1.0, 0.5, 2.0][index], "valid_chrf": 9.0}
        best_steps.append(load_checkpoint(os.path.join(config.out_dir, "best.pth"))["info"]["step"])
        last = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
        assert last["step"] == index + 1 and last["records"] == state.records
    assert best_steps == [1, 1, 3] and state.best_bleu == 2.0
    with open(os.path.join(config.out_dir, "log.jsonl")) as log:
        assert [json.loads(line)["valid_bleu"] for line in log] == [1.0, 0.5, 2.0]
    assert sorted(os.listdir(os.path.join(config.out_dir, "snapshots"))) == ["step0000002.pth", "step0000003.pth"]


@pytest.mark.parametrize("dev_corpus", [None, "none"])
def test_validation_scores_the_second_dev_set_as_the_translator_does(tmp_path, single_process, monkeypatch,
                                                                     dev_corpus):
    from lib.translation.translator import Translator
    config = tiny_config(tmp_path, eval_sentences=6, dev_corpus=dev_corpus)
    state = start_run(config, Distributed())
    evaluated = []

    def evaluate(self, pairs, **options):
        evaluated.append(pairs)
        return 10.0 * len(evaluated) + 0.123, 20.0 * len(evaluated) + 0.456, []
    monkeypatch.setattr(Translator, "evaluate", evaluate)
    scores = loop.validate(state.model, state.data, config, state.device)
    assert evaluated[0] == state.data.splits["valid"][:6]
    assert (scores["valid_bleu"], scores["valid_chrf"]) == (10.12, 20.46)
    if dev_corpus == "none":
        assert sorted(scores) == ["valid_bleu", "valid_chrf", "valid_loss"] and len(evaluated) == 1
    else:
        assert evaluated[1] == state.data.dev_pairs[:6] and len(state.data.dev_pairs) > 6
        assert (scores["dev_bleu"], scores["dev_chrf"]) == (20.12, 40.46)
    assert state.model.training  # back in training mode


# ---- learning-rate schedules ------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("schedule", ["inverse-sqrt", "linear"])
def test_a_cooldown_falls_in_a_straight_line_from_the_schedules_value_to_zero(schedule):
    plain = TrainConfig(lr=2e-3, warmup_steps=400, lr_schedule=schedule, max_steps=3000)
    config = TrainConfig(lr=2e-3, warmup_steps=400, lr_schedule=schedule, max_steps=3000, cooldown_steps=400)
    start = 2e-3 * (math.sqrt(400 / 2600) if schedule == "inverse-sqrt" else 400 / 2600)  # step 2600 in closed form
    for step in (1, 200, 400, 1600, 2600):  # before the cooldown: the schedule itself
        assert learning_rate(step, config) == learning_rate(step, plain)
    assert learning_rate(2600, config) == pytest.approx(start)
    assert learning_rate(2700, config) == pytest.approx(start * 300 / 400)
    assert learning_rate(2999, config) == pytest.approx(start / 400)
    assert learning_rate(3000, config) == 0.0 and learning_rate(3100, config) == 0.0


def test_a_cooldown_longer_than_the_run_starts_from_the_first_steps_rate():
    config = TrainConfig(lr=1e-3, warmup_steps=0, max_steps=100, cooldown_steps=200)
    assert learning_rate(1, config) == pytest.approx(1e-3 * 99 / 200)
    assert learning_rate(50, config) == pytest.approx(1e-3 * 50 / 200)


def test_schedules_without_warm_up_start_at_the_peak():
    assert learning_rate(1, TrainConfig(lr=1e-3, warmup_steps=0)) == pytest.approx(1e-3)
    linear = TrainConfig(lr=1e-3, warmup_steps=0, lr_schedule="linear", max_steps=10)
    assert [learning_rate(step, linear) for step in (1, 5, 10)] == pytest.approx([0.9e-3, 0.5e-3, 0.0])


def test_an_unknown_schedule_is_refused_when_the_config_is_made():
    with pytest.raises(ValueError, match="--lr-schedule must be one of inverse-sqrt, linear, got 'cosine'"):
        TrainConfig(lr_schedule="cosine")


@pytest.mark.parametrize("schedule", ["inverse-sqrt", "linear"])
def test_a_run_sets_the_optimizers_rate_from_its_schedule(tmp_path, single_process, schedule):
    """After max_steps the optimizer holds the rate of the last step: 0 for linear, lr * sqrt(warmup / 6) else."""
    config = tiny_config(tmp_path, lr_schedule=schedule, max_steps=6, eval_every=6)
    loop.train(config, progress=False)
    state = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    expected = 0.0 if schedule == "linear" else 3e-3 * math.sqrt(2 / 6)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(expected)
    assert state["config"]["lr_schedule"] == schedule


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
