"""Issue #21 (reliability, round two) for run_translation.py: every row of the issue's tables as (flags, exit code,
a fragment of what is printed), run as the script runs (lib.cli.run_main), on a tiny tab-separated corpus and a tiny
random translator. A row may prepare its folder first (a run's files, a lock) and check it afterwards (nothing
overwritten). The rows that need a second process (signals, two runs at once) follow the table.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import torch

import run_translation
from lib.translation import REPOSITORY, Translator
from tests.conftest import cli_outcome, random_translator, write_corpus

# A tiny training run of the corpus of tests/conftest.py (2 steps, validated at step 2).
TINY = ["--corpus", "{corpus}", "--corpus-format", "tsv", "--de-vocab-size", "60", "--en-vocab-size", "60",
        "--max-len", "16", "--embed-dim", "16", "--enc-layers", "1", "--dec-layers", "1", "--num-heads", "2",
        "--batch-tokens", "270", "--warmup-steps", "2", "--phrases-per-epoch", "0", "--max-steps", "2",
        "--eval-every", "2", "--eval-sentences", "2", "--device", "cpu", "--no-progress"]
OLD_RUN = {"last.pth": b"old state", "best.pth": b"old best", "log.jsonl": b'{"step": 99}\n',
           "snapshots/step0000099.pth": b"old snapshot"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{corpus, translator}: the corpus of tests/conftest.py and a random translator for it."""
    folder = tmp_path_factory.mktemp("reliability")
    corpus = write_corpus(folder / "corpus.tsv")
    pairs = [line.split("\t") for line in open(corpus, encoding="utf-8").read().splitlines()]
    translator = str(folder / "translator.pth")
    random_translator(pairs, 60, std=0.6, max_len=16, embed_dim=16, enc_layers=1, dec_layers=1,
                      num_heads=2).save(translator)
    return {"corpus": corpus, "translator": translator}


def old_run(folder):
    """Write the files of an earlier run into folder/run."""
    for name, content in OLD_RUN.items():
        path = folder / "run" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def old_run_kept(folder):
    for name, content in OLD_RUN.items():
        assert (folder / "run" / name).read_bytes() == content, name


def old_run_replaced(folder):
    """--force: the old run's files are gone, the new run's are there."""
    run = folder / "run"
    assert [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()] == [2]
    assert os.listdir(run / "snapshots") == ["step0000002.pth"]
    assert Translator.load(str(run / "best.pth")).info["step"] == 2
    assert torch.load(run / "last.pth", weights_only=True)["step"] == 2
    assert not (run / "run.lock").exists()


def lock(pid):
    """A setup that writes folder/run/run.lock held by ``pid`` (a callable: the folder -> a pid)."""
    def setup(folder):
        (folder / "run").mkdir()
        (folder / "run" / "run.lock").write_text(f"{pid(folder)} {socket.gethostname()}\n")
    return setup


def ended_process(folder):
    """The pid of a process that has ended (a run killed before it could remove its lock)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@dataclass
class Row:
    name: str
    flags: list
    code: int
    message: str  # a regular expression searched in what is printed
    setup: object = None  # folder -> None, before the command
    check: object = None  # folder -> None, after it


ROWS = [
    # 1. Work is overwritten or mixed without asking
    Row("train into a folder that holds a run", ["--train", *TINY, "--out-dir", "{tmp}/run"], 1,
        r"--out-dir .*/run holds a run \(last.pth, best.pth, log.jsonl, snapshots\): continue it with --resume, or "
        r"start over with --force", old_run, old_run_kept),
    Row("train --force starts over", ["--train", *TINY, "--out-dir", "{tmp}/run", "--force"], 0,
        r"Best validation BLEU .* at step 2", old_run, old_run_replaced),
    Row("--resume with --force", ["--train", *TINY, "--out-dir", "{tmp}/run", "--force", "--resume"], 1,
        "give one of them", old_run, old_run_kept),
    Row("a run in progress holds the lock", ["--train", *TINY, "--out-dir", "{tmp}/run"], 1,
        rf"--out-dir .*/run is in use by the run of process {os.getppid()} \(.*run.lock\)",
        lock(lambda folder: os.getppid())),
    Row("a stale lock is taken over", ["--train", *TINY, "--out-dir", "{tmp}/run"], 0, "at step 2",
        lock(ended_process), lambda folder: not (folder / "run" / "run.lock").exists()),
    Row("a lock from another host", ["--train", *TINY, "--out-dir", "{tmp}/run"], 1,
        "is in use by process 1 on elsewhere.example", 
        lambda folder: ((folder / "run").mkdir(), (folder / "run" / "run.lock").write_text("1 elsewhere.example\n"))),
    Row("export over an existing file", ["--export", "{tmp}/run/last.pth", "--checkpoint", "{translator}"], 1,
        "already exists: add --force", old_run, old_run_kept),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_each_row_ends_in_a_result_or_one_line_that_says_what_to_do(row, files, tmp_path, capsys, single_process):
    if row.setup:
        row.setup(tmp_path)
    flags = [flag.format(tmp=tmp_path, **files) for flag in row.flags]
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main, flags, capsys)
    assert code == row.code, printed
    assert re.search(row.message, printed), printed
    assert "Traceback" not in printed
    if code:
        assert printed.strip().count("\n") == 0, printed  # one line
    if row.check:
        assert row.check(tmp_path) is not False
