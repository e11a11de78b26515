"""Tests of the data-parallel training path of lib/training/loop.py: two processes with the gloo backend on the
CPU (started here the way torchrun would: RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT in the environment), a tiny
model on a tiny tab-separated corpus written by the test, a few steps.

Checks: the ranks end with identical parameters, each trains on its own share of the batches, the loss falls, rank 0
alone writes checkpoints and log lines, resuming from last.pth continues from the saved step, a plain
single-process run takes the expected steps, and data too small for the processes is an error, not an endless loop.

    python -m tests.test_distributed        (or python -m pytest tests/test_distributed.py)
"""
import json
import os
import signal
import socket
import sys
import time
from dataclasses import asdict

import pytest
import torch
import torch.multiprocessing as mp
from torch.optim.optimizer import register_optimizer_step_post_hook

from lib.training import loop
from lib.training import state as state_module
from lib.translation import translator as translator_module
from lib.checkpoint import load_checkpoint
from lib.translation.tokenizer import Vocabulary
from lib.translation.translator import Translator
from lib.training.config import build_model, TrainConfig
from lib.training.data import collate, epoch_batches, prepare_data
from lib.training.loop import translation_loss
from tests.helpers import tiny_config

TIMEOUT_S = 120  # a hung collective fails the test instead of blocking it


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world_size, port, config_values, resume, overrides, result_dir):
    """One training process: joins the group as torchrun's workers do, trains, and writes what it did to
    result_dir/rank<rank>.pt: its final parameters, its optimizer steps, the files it saved, the returned records
    and the source and decoder-input batches it trained on. Undoes its patches at the end, so it can also run inside
    the test process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    if world_size > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                          WORLD_SIZE=str(world_size))
    saved, optimizers, sources, inputs = [], [], [], []

    def recording(save):
        def wrapper(obj, path, *args, **kwargs):
            saved.append(os.path.basename(path))
            return save(obj, path, *args, **kwargs)
        return wrapper

    def loss_recording(model, source, decoder_input, *args, **kwargs):
        if "label_smoothing" in kwargs:  # a training step (validation passes none)
            sources.append(source.cpu())
            inputs.append(decoder_input.cpu())
        return originals[2](model, source, decoder_input, *args, **kwargs)
    originals = state_module.save_atomic, translator_module.save_atomic, loop.translation_loss
    state_module.save_atomic = recording(originals[0])  # last.pth
    translator_module.save_atomic = recording(originals[1])  # best.pth (Translator.save)
    loop.translation_loss = loss_recording
    hook = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: optimizers.append(optimizer))
    try:
        records = loop.train(TrainConfig(**config_values), resume=resume, progress=False,
                             overrides=overrides)
    finally:
        state_module.save_atomic, translator_module.save_atomic, loop.translation_loss = originals
        hook.remove()
        torch.set_num_threads(threads)
    trained = optimizers[-1].param_groups[0]["params"] if optimizers else []
    parameters = [parameter.detach().clone() for parameter in trained]
    torch.save({"parameters": parameters, "steps": len(optimizers), "saved": saved, "records": records,
                "sources": sources, "inputs": inputs}, os.path.join(result_dir, f"rank{rank}.pt"))


def run_processes(config, tmp_path, world_size=2, resume=False, overrides=None):
    """Train in ``world_size`` fresh processes; returns each rank's report (see _worker)."""
    result_dir = tmp_path / f"results-{time.monotonic_ns()}"
    result_dir.mkdir()
    context = mp.start_processes(_worker, args=(world_size, free_port(), asdict(config), resume, overrides,
                                                str(result_dir)),
                                 nprocs=world_size, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):  # raises if a process failed
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"training in {world_size} processes did not finish within {TIMEOUT_S} s")
    return [torch.load(result_dir / f"rank{rank}.pt", weights_only=True) for rank in range(world_size)]


def logged_steps(config):
    with open(os.path.join(config.out_dir, "log.jsonl")) as log:
        return [json.loads(line)["step"] for line in log]


def saved_data(config, checkpoint):
    """The training data of a run, with the vocabularies its checkpoint holds."""
    return prepare_data(config, (Vocabulary.from_tensor(checkpoint["de_vocab"]),
                                 Vocabulary.from_tensor(checkpoint["en_vocab"])))


def mean_training_loss(model, data):
    """Cross-entropy (no smoothing) of ``model`` on all training sentences, in eval mode."""
    model.eval()
    with torch.no_grad():
        return translation_loss(model, *collate(data.train_sentences, "cpu"))[0].item()


# Random numbers in training (dropout, word dropout), so that an exact resume needs each rank's RNG state.
NOISE = dict(dropout=0.1, target_word_dropout=0.2)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """Train 8 steps in 2 processes (checkpoints at steps 4 and 8), then resume to step 12 in 2 new processes
    (crossing from epoch 2 into epoch 3)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    config = tiny_config(tmp_path, **NOISE)
    first = run_processes(config, tmp_path)
    checkpoint = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    steps_before = logged_steps(config)
    resumed = run_processes(config, tmp_path, resume=True, overrides={"max_steps": 12})
    return config, first, checkpoint, steps_before, resumed


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    """The same run as two_process_run's, 12 steps without a break."""
    tmp_path = tmp_path_factory.mktemp("ddp-straight")
    return run_processes(tiny_config(tmp_path, max_steps=12, **NOISE), tmp_path)


def test_resuming_continues_exactly_as_without_a_break(two_process_run, uninterrupted_run):
    """Same batches, same noise, same weights: last.pth holds every rank's RNG state (the ranks' differ)."""
    _, _, checkpoint, _, resumed = two_process_run
    assert len(checkpoint["rng_states"]) == 2
    assert not torch.equal(checkpoint["rng_states"][0]["cpu"], checkpoint["rng_states"][1]["cpu"])
    for rank in range(2):
        assert len(resumed[rank]["inputs"]) == 4 and len(uninterrupted_run[rank]["inputs"]) == 12
        for decoder_input, straight in zip(resumed[rank]["inputs"], uninterrupted_run[rank]["inputs"][8:]):
            assert torch.equal(decoder_input, straight)  # the same word dropout
        for parameter, straight in zip(resumed[rank]["parameters"], uninterrupted_run[rank]["parameters"]):
            assert torch.equal(parameter, straight)


def test_ranks_end_with_identical_parameters(two_process_run):
    _, first, checkpoint, _, resumed = two_process_run
    for reports in (first, resumed):
        assert [report["steps"] for report in reports] == [reports[0]["steps"]] * 2
        for rank0, rank1 in zip(reports[0]["parameters"], reports[1]["parameters"]):
            assert torch.equal(rank0, rank1)
    for saved, trained in zip(checkpoint["model"].values(), first[0]["parameters"]):
        assert torch.equal(saved, trained)  # last.pth holds the trained (unwrapped) model's weights


def test_each_rank_trains_on_its_own_shard(two_process_run):
    config, first, checkpoint, _, resumed = two_process_run
    data = saved_data(config, checkpoint)
    for rank in range(2):
        expected = []
        for epoch in range(12):
            batches = epoch_batches(data, config, epoch)
            expected += batches[rank::2][:len(batches) // 2]  # the same deterministic batches on every rank
        trained = first[rank]["sources"] + resumed[rank]["sources"]
        assert len(trained) == 12
        for source, batch in zip(trained, expected):
            assert torch.equal(source, collate(batch, "cpu")[0])


def test_loss_falls(two_process_run):
    config, _, checkpoint, _, _ = two_process_run
    data = saved_data(config, checkpoint)
    torch.manual_seed(config.seed)  # train() draws its initial model right after this seed
    model = build_model(config, data)
    initial = mean_training_loss(model, data)
    model.load_state_dict(checkpoint["model"])
    trained = mean_training_loss(model, data)
    assert trained < initial - 0.2, (initial, trained)


def test_only_rank_0_writes(two_process_run):
    config, first, _, steps_before, resumed = two_process_run
    assert first[1]["saved"] == [] and resumed[1]["saved"] == []
    assert first[0]["saved"].count("last.pth") == 2 and resumed[0]["saved"].count("last.pth") == 1
    assert steps_before == [4, 8]  # one log line per validation: a second writer would double them
    assert sorted(os.listdir(config.out_dir)) == ["best.pth", "last.pth", "log.jsonl", "snapshots"]
    assert sorted(os.listdir(os.path.join(config.out_dir, "snapshots"))) == [  # one per validation, both runs
        "step0000004.pth", "step0000008.pth", "step0000012.pth"]
    assert first[1]["records"] == [] and [record["step"] for record in first[0]["records"]] == [4, 8]


def test_resume_continues_from_the_saved_step(two_process_run):
    config, first, checkpoint, _, resumed = two_process_run
    assert checkpoint["step"] == 8 and first[0]["steps"] == 8
    assert (checkpoint["epoch"], checkpoint["batch_index"]) == (2, 2)  # 3 steps per epoch: saved within epoch 2
    assert [report["steps"] for report in resumed] == [4, 4]  # steps 9 to 12 only, on each rank
    assert logged_steps(config) == [4, 8, 12]
    assert load_checkpoint(os.path.join(config.out_dir, "last.pth"))["step"] == 12
    assert [record["step"] for record in resumed[0]["records"]] == [4, 8, 12]


def test_single_process_takes_the_expected_steps(tmp_path, single_process, capfd):
    config = tiny_config(tmp_path, max_steps=6, eval_every=3)
    _worker(0, 1, None, asdict(config), False, None, str(tmp_path))  # in this process, as without torchrun
    report = torch.load(tmp_path / "rank0.pt", weights_only=True)
    assert report["steps"] == 6
    assert logged_steps(config) == [3, 6]
    assert load_checkpoint(os.path.join(config.out_dir, "last.pth"))["step"] == 6
    assert report["saved"].count("last.pth") == 2
    assert "with 1 process(es): effective batch about 270 tokens" in capfd.readouterr().out


def test_init_from_starts_a_new_run_from_a_translators_weights(tmp_path, single_process):
    """--init-from: the new run takes the translator's vocabularies, shape and weights, step 0 (lr 1e-12 moves the
    weights by about 1e-12 per step, far less than a fresh model's differ)."""
    first = tiny_config(tmp_path, out_dir=str(tmp_path / "first"), max_steps=4, eval_every=4)
    loop.train(first, progress=False)
    translator = Translator.load(os.path.join(first.out_dir, "best.pth"))
    second = tiny_config(tmp_path, out_dir=str(tmp_path / "second"), init_from=os.path.join(first.out_dir, "best.pth"),
                         embed_dim=32, lr=1e-12, max_steps=2, eval_every=2)
    records = loop.train(second, progress=False)
    assert [record["step"] for record in records] == [2]
    state = load_checkpoint(os.path.join(second.out_dir, "last.pth"))
    assert state["config"]["embed_dim"] == 16  # the shape comes from the translator, not the flags
    assert state["de_vocab"].equal(translator.de_vocab.to_tensor())
    for name, value in translator.model.state_dict().items():
        torch.testing.assert_close(state["model"][name], value, rtol=0, atol=1e-8, msg=name)


def test_too_few_batches_for_the_processes_is_an_error(tmp_path, single_process):
    config = tiny_config(tmp_path, max_len=2)  # every pair is longer: no training batch at all
    alarm = getattr(signal, "SIGALRM", None)  # a hang (the old endless loop over empty epochs) fails, where it can
    if alarm is not None:
        previous = signal.signal(alarm, lambda *_: pytest.fail("training looped over empty epochs"))
        signal.alarm(60)
    try:
        with pytest.raises(ValueError, match="--max-len 2 leaves nothing to train on"):  # found before the loop
            loop.train(config, progress=False)
    finally:
        if alarm is not None:
            signal.alarm(0)
            signal.signal(alarm, previous)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_decoder_layerdrop_trains_in_two_processes(tmp_path):
    """Each rank skips its own decoder layers, so some parameters get no gradient on a rank: DDP must still reduce
    and keep the ranks' parameters identical (find_unused_parameters)."""
    config = tiny_config(tmp_path, decoder_layerdrop=0.5, dec_layers=2, max_steps=4)
    ranks = run_processes(config, tmp_path)
    assert [rank["steps"] for rank in ranks] == [4, 4]
    for first, second in zip(ranks[0]["parameters"], ranks[1]["parameters"]):
        torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_fewer_batches_than_processes_is_an_error(tmp_path):
    """rank_batches' guard against endless empty epochs: 7 batches per epoch cannot feed 8 processes."""
    from lib.training.distributed import Distributed
    from lib.training.data import rank_batches
    config = tiny_config(tmp_path)
    data = prepare_data(config)
    assert len(epoch_batches(data, config, 0)) == 7
    with pytest.raises(ValueError, match="epoch 0 has 7 training batches, fewer than the 8 process"):
        rank_batches(data, config, 0, Distributed(0, 8, 0))
