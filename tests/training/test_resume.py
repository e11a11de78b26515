"""Tests of stopping and resuming lib/training/loop.py's runs: a resumed run continues exactly as the
uninterrupted one (after SIGKILL, after Ctrl-C raised inside a step, after a Ctrl-C signal), with every source of
randomness on; what a resumed run may change and what it may not; the out-dir and STOP-file checks before any work."""
import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

from lib.training import loop
from lib.checkpoint import load_checkpoint, save_atomic
from lib.training.config import RESUMABLE_FIELDS
from lib.training.stopping import NonFiniteLoss, TrainingInterrupted
from tests.helpers import tiny_config, train_recording

# Every random thing a step does: dropout (embeddings, attention, feed-forward), attention and activation dropout,
# decoder layer-drop, source and target word dropout; and the recipe's shape options.
NOISY = dict(phrases=True, phrases_per_epoch=10, dropout=0.1, attention_dropout=0.2, activation_dropout=0.1,
             decoder_layerdrop=0.3, dec_layers=2, source_word_dropout=0.2, target_word_dropout=0.2, pre_norm=True,
             tie_embeddings=True, ffn_dim=24, phrase_tag=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The noisy tiny run, 8 steps without a break: (config values, per-step losses, last.pth)."""
    tmp_path = tmp_path_factory.mktemp("straight")
    config = tiny_config(tmp_path, **NOISY)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            patch.delenv(name, raising=False)
        _, steps = train_recording(config)
    return asdict(config), [step["loss"] for step in steps], load_checkpoint(os.path.join(config.out_dir, "last.pth"))


def assert_same_run(last, expected):
    """Two last.pth files of the same step hold the same weights, optimizer state and position."""
    assert (last["step"], last["epoch"], last["batch_index"]) == (expected["step"], expected["epoch"],
                                                                  expected["batch_index"])
    for name, value in expected["model"].items():
        assert torch.equal(last["model"][name], value), name
    for index, moments in expected["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(last["optimizer"]["state"][index][name], moments[name])


def resume_and_compare(config, losses_before, uninterrupted, saved_step):
    """Resume ``config``'s run from last.pth (at ``saved_step``) to step 8; it must retrace the uninterrupted run."""
    _, losses, expected = uninterrupted
    assert load_checkpoint(os.path.join(config.out_dir, "last.pth"))["step"] == saved_step
    assert losses_before[:saved_step] == losses[:saved_step]
    _, steps = train_recording(config, resume=True, overrides={"max_steps": 8})
    assert [step["loss"] for step in steps] == losses[saved_step:]
    assert_same_run(load_checkpoint(os.path.join(config.out_dir, "last.pth")), expected)


def test_a_resume_needs_the_saved_random_states(tmp_path, single_process, uninterrupted):
    """A run of 4 steps resumed to 8 retraces the uninterrupted run; without last.pth's RNG states it would not
    (the noise is real, and the states are what makes the resume exact)."""
    _, losses, _ = uninterrupted
    exact, reseeded = (tiny_config(tmp_path / name, max_steps=4, **NOISY) for name in ("exact", "reseeded"))
    for config in (exact, reseeded):
        _, steps = train_recording(config)
        assert [step["loss"] for step in steps] == losses[:4]
    last_path = os.path.join(reseeded.out_dir, "last.pth")
    checkpoint = load_checkpoint(last_path)
    checkpoint["rng_states"] = None
    save_atomic(checkpoint, last_path)
    _, steps = train_recording(reseeded, resume=True, overrides={"max_steps": 8})
    assert [step["loss"] for step in steps] != losses[4:]
    resume_and_compare(exact, losses, uninterrupted, saved_step=4)


def test_resume_after_sigkill_continues_exactly(tmp_path, single_process, uninterrupted):
    """A process killed at step 6 (SIGKILL: nothing runs after) leaves last.pth of step 4; resuming retraces."""
    config = tiny_config(tmp_path, **NOISY)
    script = (
        "import os, signal, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "from lib.training import loop as t\n"
        "from tests.helpers import train_recording\n"
        f"config = t.TrainConfig(**{asdict(config)!r})\n"
        "def die(step):\n"
        "    if step == 6:\n"
        "        print([s['loss'] for s in steps], flush=True)\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "steps = []\n"
        "original = t.translation_loss\n"
        "def recording(model, *args, label_smoothing=None):\n"
        "    if label_smoothing is None:\n"
        "        return original(model, *args)\n"
        "    die(len(steps) + 1)\n"
        "    loss, count = original(model, *args, label_smoothing=label_smoothing)\n"
        "    steps.append({'loss': loss.item()})\n"
        "    return loss, count\n"
        "t.translation_loss = recording\n"
        "t.train(config, progress=False)\n")
    env = {name: value for name, value in os.environ.items() if name not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), env=env)
    assert process.returncode == -signal.SIGKILL, process.stderr
    losses_before = eval(process.stdout.strip().splitlines()[-1])  # the list the child printed
    resume_and_compare(config, losses_before, uninterrupted, saved_step=4)


def test_keyboard_interrupt_inside_a_step_saves_the_last_whole_step(tmp_path, single_process, uninterrupted):
    """KeyboardInterrupt raised in step 6's forward pass: last.pth of step 5, one-line TrainingInterrupted."""
    config = tiny_config(tmp_path, **NOISY)

    def interrupt(step):
        if step == 6:
            raise KeyboardInterrupt
    steps = []
    with pytest.raises(TrainingInterrupted) as caught:
        train_recording(config, action=interrupt, steps=steps)
    last_path = os.path.join(config.out_dir, "last.pth")
    assert str(caught.value) == (f"Interrupted at step 5: {last_path} saved; continue with: "
                                 f"python run_translation.py --train --resume --out-dir {config.out_dir}")
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.step == 5
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)  # crosses processes whole
    assert sorted(os.listdir(config.out_dir)) == ["best.pth", "last.pth", "log.jsonl", "snapshots"]  # no temp file
    resume_and_compare(config, [step["loss"] for step in steps], uninterrupted, saved_step=5)


def test_ctrl_c_signal_ends_the_run_after_the_step(tmp_path, single_process, uninterrupted):
    """SIGINT during step 6: the step completes, last.pth of step 6 is saved (no validation), and SIGINT's handler
    is Python's own again afterwards."""
    config = tiny_config(tmp_path, **NOISY)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def ctrl_c(step):
        if step == 6:
            os.kill(os.getpid(), signal.SIGINT)
    steps = []
    with pytest.raises(TrainingInterrupted, match="^Interrupted at step 6: "):
        train_recording(config, action=ctrl_c, steps=steps)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert len(steps) == 6
    last = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    assert [record["step"] for record in last["records"]] == [4]  # saved without validating
    resume_and_compare(config, [step["loss"] for step in steps], uninterrupted, saved_step=6)


@pytest.mark.parametrize("max_steps", [4, 2])
def test_a_resume_with_nothing_to_train_says_so_and_changes_nothing(tmp_path, single_process, max_steps):
    """--max-steps at or behind the run's step: an error that names the step, not a silent end."""
    config = tiny_config(tmp_path, max_steps=4)
    loop.train(config, progress=False)
    before = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    with pytest.raises(ValueError, match=f"is at step 4 already, so --max-steps {max_steps} leaves nothing to train: "
                                         "give a --max-steps above 4"):
        train_recording(config, resume=True, overrides={"max_steps": max_steps})
    after = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    assert after["step"] == before["step"] == 4 and after["records"] == before["records"]


def test_max_minutes_counts_the_minutes_of_this_leg(tmp_path, single_process, monkeypatch):
    """A run that trained 5 minutes, resumed with --max-minutes 1 on a clock 2 s a step: 31 more steps (the first
    past the minute ends it), not one."""
    now = [1000.0]
    monkeypatch.setattr(loop.time, "time", lambda: now[0])
    config = tiny_config(tmp_path, max_steps=4)

    def tick(step):
        now[0] += 75.0  # the first leg: 4 steps of 75 s
    train_recording(config, action=tick)

    def slow(step):
        now[0] += 2.0
    records, steps = train_recording(config, resume=True, overrides={"max_steps": 100, "max_minutes": 1.0},
                                     action=slow)
    assert len(steps) == 31


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_state(tmp_path, single_process, monkeypatch):
    config = tiny_config(tmp_path, max_steps=8)
    original = loop.translation_loss

    def nan_after_step_5(*args, **kwargs):
        loss, count = original(*args, **kwargs)
        return (loss * float("nan") if nan_after_step_5.calls >= 5 else loss), count
    nan_after_step_5.calls = 0
    counting = loop.train_step

    def step(*args, **kwargs):
        nan_after_step_5.calls += 1
        return counting(*args, **kwargs)
    monkeypatch.setattr(loop, "translation_loss", nan_after_step_5)
    monkeypatch.setattr(loop, "train_step", step)
    with pytest.raises(NonFiniteLoss, match="the training loss became nan at step 5 .*--lr"):
        loop.train(config, progress=False)
    last = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    assert last["step"] == 4 and all(torch.isfinite(value).all() for value in last["model"].values())
    best = load_checkpoint(os.path.join(config.out_dir, "best.pth"))
    assert all(torch.isfinite(value.float()).all() for value in best["model"].values())


# ---- what a resumed run may change ------------------------------------------------------------------------------


@pytest.fixture
def finished_run(tmp_path, single_process):
    """A tiny run of 4 steps, finished: its config."""
    config = tiny_config(tmp_path, max_steps=4, eval_every=4)
    loop.train(config, progress=False)
    return config


def no_data_preparation(monkeypatch):
    def refuse(*args):
        raise AssertionError("the corpus was read before the check")
    monkeypatch.setattr(loop, "prepare_data", refuse)


def test_a_run_started_with_relative_paths_resumes_from_any_working_folder(tmp_path, single_process, monkeypatch):
    started = tmp_path / "started here"
    config = tiny_config(started, max_steps=4, eval_every=4)
    monkeypatch.chdir(started)
    relative = tiny_config(started, max_steps=4, eval_every=4, corpus="corpus.tsv", out_dir="run")
    assert relative.corpus == config.corpus  # stored absolute
    loop.train(relative, progress=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    records = loop.train(dataclasses.replace(config, max_steps=8), resume=True, progress=False,
                         overrides={"max_steps": 8, "out_dir": config.out_dir})
    assert [record["step"] for record in records] == [4, 8]
    monkeypatch.chdir(started)  # the same corpus named relatively again is the same setting
    loop.train(config, resume=True, progress=False, overrides={"max_steps": 12, "corpus": "corpus.tsv",
                                                               "out_dir": config.out_dir})


def test_a_log_cut_short_by_a_kill_is_written_anew_from_last_pth_on_resume(finished_run, capsys):
    log = os.path.join(finished_run.out_dir, "log.jsonl")
    with open(log) as file:
        whole = file.read()
    with open(log, "w") as file:
        file.write(whole + whole[:30])  # a record cut short, as a kill while writing it leaves
    records = loop.train(finished_run, resume=True, progress=False, overrides={"max_steps": 8})
    assert f"{log}: line 2 was cut short or is not a record, so the log was written anew from the 1 record(s) that " \
           "last.pth holds\n" in capsys.readouterr().out
    with open(log) as file:
        assert [json.loads(line) for line in file] == records


def test_a_resume_of_a_missing_folder_makes_nothing(tmp_path, monkeypatch):
    no_data_preparation(monkeypatch)
    config = tiny_config(tmp_path, out_dir=str(tmp_path / "typo" / "deeper"))
    with pytest.raises(FileNotFoundError, match=r"typo/deeper does not exist, so there is no run to resume"):
        loop.train(config, resume=True, progress=False, overrides={"max_steps": 8})
    assert not (tmp_path / "typo").exists()


def test_the_way_named_for_a_run_without_last_pth_keeps_its_best_pth(finished_run, monkeypatch):
    best = os.path.join(finished_run.out_dir, "best.pth")
    kept = open(best, "rb").read()
    os.remove(os.path.join(finished_run.out_dir, "last.pth"))
    with pytest.raises(FileNotFoundError) as resumed:
        loop.train(finished_run, resume=True, progress=False, overrides={"max_steps": 8})
    with pytest.raises(FileExistsError) as started_again:
        loop.train(finished_run, progress=False)
    for refused in (resumed, started_again):
        assert f"--init-from {best} --out-dir ANOTHER_FOLDER" in str(refused.value)
    another = os.path.join(os.path.dirname(finished_run.out_dir), "another")
    records = loop.train(dataclasses.replace(finished_run, init_from=best, out_dir=another), progress=False)
    assert records[-1]["step"] == 4 and open(best, "rb").read() == kept


def test_fixed_settings_given_on_resume_are_an_error_naming_them(finished_run, monkeypatch):
    no_data_preparation(monkeypatch)
    last_path = os.path.join(finished_run.out_dir, "last.pth")
    with pytest.raises(ValueError) as caught:
        loop.train(finished_run, resume=True, progress=False,
                   overrides={"embed_dim": 64, "lr": 0.5, "seed": 7, "max_steps": 8})
    message = str(caught.value)
    assert message.startswith(f"--embed-dim 64, --seed 7: fixed by the run's checkpoint {last_path} (--embed-dim 16, "
                              "--seed 0), so a resumed run cannot change them.")
    assert "--lr" not in message and "--max-steps" not in message  # those may change
    assert "\n" not in message


def test_fixed_settings_equal_to_the_saved_ones_are_accepted(finished_run):
    records = loop.train(finished_run, resume=True, progress=False,
                         overrides={"embed_dim": 16, "seed": 0, "corpus": finished_run.corpus,
                                    "max_steps": 8})
    assert [record["step"] for record in records] == [4, 8]


def test_resumable_settings_are_applied(finished_run):
    overrides = {"lr": 1e-3, "weight_decay": 0.05, "dropout": 0.2, "label_smoothing": 0.2, "max_steps": 6,
                 "eval_every": 2, "source_word_dropout": 0.1}
    records = loop.train(finished_run, resume=True, progress=False, overrides=overrides)
    assert [record["step"] for record in records] == [4, 6]
    last = load_checkpoint(os.path.join(finished_run.out_dir, "last.pth"))
    assert {name: last["config"][name] for name in overrides} == overrides
    group = last["optimizer"]["param_groups"][0]
    assert group["weight_decay"] == 0.05
    assert group["lr"] == pytest.approx(1e-3 * (2 / 6) ** 0.5)  # the new peak on the run's schedule, at step 6


def test_resuming_keeps_the_runs_schedule(finished_run):
    with pytest.raises(ValueError, match="^--lr-schedule linear: fixed by the run's checkpoint"):
        loop.train(finished_run, resume=True, progress=False,
                   overrides={"lr_schedule": "linear", "max_steps": 8})


def test_an_unknown_override_is_an_error(finished_run):
    with pytest.raises(ValueError, match="unknown training setting.*max_step"):
        loop.train(finished_run, resume=True, progress=False, overrides={"max_step": 8})


def test_without_overrides_the_whole_config_is_compared(tmp_path, finished_run):
    """The library call with a config alone: its fixed fields must match the run's, the others are applied."""
    longer = tiny_config(tmp_path, max_steps=6, eval_every=2)
    assert [record["step"] for record in loop.train(longer, resume=True, progress=False)] == [4, 6]
    with pytest.raises(ValueError, match="^--num-heads 4: fixed by the run's checkpoint"):
        loop.train(tiny_config(tmp_path, num_heads=4), resume=True, progress=False)


def test_resumable_fields_are_the_documented_set():
    """The flags docs/training-at-scale.md lists as what --resume may change are RESUMABLE_FIELDS, no more, no less."""
    import re
    from lib.files import REPOSITORY
    with open(os.path.join(REPOSITORY, "docs", "training-at-scale.md"), encoding="utf-8") as file:
        text = file.read()
    listed = re.search(r"- \*\*What `--resume` may change\*\*(.*?)\n- \*\*", text, re.S).group(1)
    flags = set(re.findall(r"`--([a-z-]+)`", listed)) - {"resume"}
    assert {name.replace("-", "_") for name in flags} == set(RESUMABLE_FIELDS)
    assert {"dev_corpus", "lr", "extra_sources", "out_dir"} <= set(RESUMABLE_FIELDS)


def test_a_checkpoint_from_before_the_recipe_options_resumes(finished_run):
    """An old last.pth: no recipe options in its config, no RNG states. It resumes with the defaults."""
    last_path = os.path.join(finished_run.out_dir, "last.pth")
    old = load_checkpoint(last_path)
    recipe = ("pre_norm", "tie_embeddings", "ffn_dim", "attention_dropout", "activation_dropout",
              "decoder_layerdrop", "source_word_dropout", "target_word_dropout", "phrase_tag", "joint_vocab_size",
              "share_all_embeddings", "cooldown_steps")
    old["config"] = {name: value for name, value in old["config"].items() if name not in recipe}
    del old["rng_states"]
    save_atomic(old, last_path)
    records = loop.train(finished_run, resume=True, progress=False, overrides={"max_steps": 6})
    assert [record["step"] for record in records] == [4, 6]
    assert load_checkpoint(last_path)["config"]["pre_norm"] is False


# ---- checks before any work -------------------------------------------------------------------------------------


def test_an_out_dir_that_cannot_be_written_is_found_before_the_corpus_is_read(tmp_path, single_process, monkeypatch):
    no_data_preparation(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = tiny_config(tmp_path, out_dir=str(blocker / "run"))
    with pytest.raises(PermissionError, match=f"^--out-dir {blocker / 'run'} cannot be written"):
        loop.train(config, progress=False)


def test_a_stop_file_left_in_the_out_dir_is_refused_before_the_corpus_is_read(finished_run, monkeypatch):
    no_data_preparation(monkeypatch)
    stop = os.path.join(finished_run.out_dir, "STOP")
    open(stop, "w").close()
    with pytest.raises(ValueError, match=f"^{stop} exists: it stopped the last run.*Delete it \\(rm {stop}\\)"):
        loop.train(finished_run, resume=True, progress=False, overrides={"max_steps": 8})
    assert os.path.exists(stop)  # never deleted for the user


def test_a_stop_file_ends_the_run_within_10_steps_and_says_so(tmp_path, single_process, capsys):
    config = tiny_config(tmp_path, max_steps=40, eval_every=100)

    def stop_at_3(step):
        if step == 3:
            open(os.path.join(config.out_dir, "STOP"), "w").close()
    records, steps = train_recording(config, action=stop_at_3)
    assert len(steps) == 10 and [record["step"] for record in records] == [10]  # validated and saved
    assert load_checkpoint(os.path.join(config.out_dir, "last.pth"))["step"] == 10
    stop, last_path = os.path.join(config.out_dir, "STOP"), os.path.join(config.out_dir, "last.pth")
    assert f"Stopped at step 10: found {stop}; {last_path} saved (delete {stop} before --resume)\n" in (
        capsys.readouterr().out)


def test_max_minutes_ends_the_run_and_says_so(tmp_path, single_process, capsys, monkeypatch):
    """A clock that jumps 2 minutes at step 3 stops a run of --max-minutes 1 after that step."""
    config = tiny_config(tmp_path, max_steps=40, eval_every=100, max_minutes=1.0)
    now = [1000.0]
    monkeypatch.setattr(loop.time, "time", lambda: now[0])

    def jump(step):
        if step == 3:
            now[0] += 120.0
    records, steps = train_recording(config, action=jump)
    assert len(steps) == 3 and [record["step"] for record in records] == [3]
    assert records[0]["minutes"] == 2.0
    last_path = os.path.join(config.out_dir, "last.pth")
    assert f"Stopped at step 3: --max-minutes 1 reached; {last_path} saved\n" in capsys.readouterr().out


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_a_run_without_a_second_dev_set_resumes_elsewhere_without_one(tmp_path, single_process, monkeypatch):
    loop.train(tiny_config(tmp_path, dev_corpus="none"), progress=False)
    monkeypatch.chdir(tmp_path)  # "none" is no path relative to the folder the run was started in
    longer = tiny_config(tmp_path, max_steps=12)
    records = loop.train(longer, resume=True, progress=False, overrides={"max_steps": 12})
    assert [record["step"] for record in records] == [4, 8, 12] and "dev_bleu" not in records[-1]
