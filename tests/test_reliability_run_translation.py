"""Issue #21 (reliability, round two) for run_translation.py: every row of the issue's tables as (flags, exit code,
a fragment of what is printed), run as the script runs (lib.cli.run_main), on a tiny tab-separated corpus and a tiny
random translator. A row may prepare its folder first (a run's files, a lock) and check it afterwards (nothing
overwritten). The rows that need a second process (signals, two runs at once) follow the table.
"""
import io
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
from lib.translation.translator import REPOSITORY, Translator
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
    FILES.update(corpus=corpus, translator=translator)
    return FILES


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


FILES = {}  # the module's files, for setups
TRAINING_STATE = {"config": {}, "model": {}, "optimizer": {"state": {}}, "step": 4, "records": []}


def saved(folder, checkpoint, name="last.pth"):
    """Save ``checkpoint`` as folder/run/NAME."""
    (folder / "run").mkdir(exist_ok=True)
    torch.save(checkpoint, folder / "run" / name)


@dataclass
class Row:
    name: str
    flags: list
    code: int
    message: str  # a regular expression searched in what is printed
    setup: object = None  # folder -> None, before the command
    check: object = None  # folder -> None, after it
    patch: object = None  # monkeypatch -> None, before the command


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
    # 2. A value that is accepted now and crashes later
    *[Row(f"--length-penalty {value} with {action[0]}", [*action, "--beam", "4", f"--length-penalty={value}"], 2,
          re.escape(f"--length-penalty: must be at least -10 and at most 10, got {float(value):g}") + "$")
      for value in ("1000", "1e308", "-1e308", "10.5")
      for action in (["--input", "-"], ["--test"], ["--eval"], ["--export", "{tmp}/x.pth"])],
    Row("--length-penalty=-1e308", ["--input", "-", "--length-penalty=-1e308"], 2, "must be at least -10"),
    Row("--length-penalty 10 is in range and finite", ["--test", "--beam", "4", "--length-penalty", "10",
                                                       "--checkpoint", "{translator}", "--corpus", "{corpus}",
                                                       "--corpus-format", "tsv"], 0, "Translation: "),
    Row("a stored decoding out of range", ["--test", "--checkpoint", "{tmp}/x.pth"], 1,
        r"x.pth is a damaged translator checkpoint: its stored decoding beam=4, length_penalty=1000 is not a beam "
        "width of at least 1 and a penalty from -10 to 10; export it again",
        lambda folder: torch.save(dict(Translator.load(FILES["translator"]).to_checkpoint(),
                                       info={"decoding": {"beam": 4, "length_penalty": 1000}}), folder / "x.pth")),
    Row("--init-from with another shape", ["--train", *TINY, "--out-dir", "{tmp}/run", "--init-from", "{translator}",
                                           "--embed-dim", "32", "--enc-layers", "2"], 1,
        r"--embed-dim 32, --enc-layers 2: a run started with --init-from .*translator.pth has that translator's shape "
        r"\(--embed-dim 16, --enc-layers 1\)\. Leave them out"),
    Row("--init-from with its own shape", ["--train", *TINY, "--out-dir", "{tmp}/run", "--init-from",
                                           "{translator}"], 0, "at step 2"),
    Row("--de-vocab-size above what the corpus supports", ["--train", *TINY, "--out-dir", "{tmp}/run",
                                                           "--de-vocab-size", "100000"], 0,
        r"Notice: the German vocabulary has \d+ pieces, not --de-vocab-size 100000: the most this corpus supports"),
    Row("--max-len so small that nothing fits", ["--train", *TINY, "--out-dir", "{tmp}/run", "--max-len", "1"], 1,
        "--max-len 1 leaves nothing to train on: none of the 67 training sentences fits in 1 subword tokens per side; "
        "raise --max-len"),
    # 3. Signals and states around training (the signals themselves: see the tests below the table)
    Row("--resume of a counting model", ["--train", "--resume", *TINY, "--out-dir", "{tmp}/run"], 1,
        r"run/last.pth is not a training state of run_translation.py --train \(it has no model, optimizer, step\)",
        lambda folder: saved(folder, {"state_dict": {"w": torch.zeros(2)}, "config": {"hidden": 4}})),
    Row("--resume of a plain tensor dict", ["--train", "--resume", *TINY, "--out-dir", "{tmp}/run"], 1,
        r"run/last.pth is not a training state .*\(it has no config, model, optimizer\)",
        lambda folder: saved(folder, {"weight": torch.zeros(2)})),
    Row("--resume of a best.pth", ["--train", "--resume", *TINY, "--out-dir", "{tmp}/run"], 1,
        r"run/last.pth is a translator \(as best.pth is\), not a training state: .* --init-from .*run/last.pth",
        lambda folder: saved(folder, Translator.load(FILES["translator"]).to_checkpoint())),
    Row("--export of a training state", ["--export", "{tmp}/out.pth", "--checkpoint", "{tmp}/run/last.pth"], 1,
        r"run/last.pth is a training state \(a run's last.pth, for --train --resume\), not a translator: use the "
        r"run's best.pth or one of its snapshots", lambda folder: saved(folder, TRAINING_STATE)),
    Row("--average of a training state", ["--export", "{tmp}/out.pth", "--average", "{translator}",
                                          "{tmp}/run/last.pth"], 1,
        r"run/last.pth is a training state", lambda folder: saved(folder, TRAINING_STATE)),
    # 4. The rest
    Row("--input - with standard input closed", ["--input", "-", "--checkpoint", "{translator}"], 1,
        r"--input -: standard input is closed; pipe text into it", patch=lambda monkeypatch: monkeypatch.setattr(
            sys, "stdin", None)),
    Row("--input of a file with NUL bytes", ["--input", "{tmp}/binary.txt", "--checkpoint", "{translator}"], 1,
        r"--input .*binary.txt is a binary file, not text: line 2 holds a NUL byte",
        lambda folder: (folder / "binary.txt").write_bytes(b"Der Hund schl\xc3\xa4ft.\nhallo\x00wer\n")),
    Row("standard input with NUL bytes", ["--input", "-", "--checkpoint", "{translator}"], 1,
        r"standard input is a binary file, not text: line 1 holds a NUL byte",
        patch=lambda monkeypatch: monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a\x00b\n")))),
    Row("--train of a tsv without --corpus-format", ["--train", *TINY, "--corpus-format", "ding", "--out-dir",
                                                     "{tmp}/run"], 1,
        r"no line of .*corpus.tsv is in Ding format \('german :: english'\); for a tsv \(german<TAB>english\) add "
        "--corpus-format tsv"),
    Row("--de-vocab-size 5", ["--train", *TINY, "--out-dir", "{tmp}/run", "--de-vocab-size", "5"], 1,
        r"a vocabulary of 5 pieces is too small for this corpus: its characters and the 4 special tokens need at "
        r"least (\d+); give a size of \1 or more"),
    Row("--eval --split all of a tsv without the format", ["--eval", "--split", "all", "--corpus", "{corpus}",
                                                           "--checkpoint", "{translator}"], 1,
        r"no line of .*corpus.tsv is in Ding format"),
    Row("--eval --split all of an empty tsv", ["--eval", "--split", "all", "--corpus", "{tmp}/empty.tsv",
                                               "--corpus-format", "tsv", "--checkpoint", "{translator}"], 1,
        r"the corpus file .*empty.tsv is empty: it needs german<TAB>english lines",
        lambda folder: (folder / "empty.tsv").write_text("")),
    Row("--eval --split all of one-sided rows", ["--eval", "--split", "all", "--corpus", "{tmp}/one-sided.tsv",
                                                 "--corpus-format", "tsv", "--checkpoint", "{translator}"], 1,
        r"one-sided.tsv holds no pair to use: all its 2 rows of .* with an empty German or English side \(lines 1, "
        r"3\)", lambda folder: (folder / "one-sided.tsv").write_text("Der Hund.\t\n\n\tThe cat.\n")),
    Row("--eval --split all with some one-sided rows", ["--eval", "--split", "all", "--corpus", "{tmp}/some.tsv",
                                                        "--corpus-format", "tsv", "--checkpoint", "{translator}"], 0,
        r"warning: skipped 1 row of .*some.tsv with an empty German or English side \(line 2\)",
        lambda folder: (folder / "some.tsv").write_text("Der Hund schläft.\tThe dog sleeps.\nDie Katze.\t\n")),
    Row("--test --split all of a corpus of one's own", ["--test", "--split", "all", "--corpus", "{tmp}/own.tsv",
                                                        "--corpus-format", "tsv", "--checkpoint", "{translator}"], 0,
        r"Seen in training: unknown", lambda folder: (folder / "own.tsv").write_text("der Hund\tthe dog\n")),
    Row("--input with --plot and --line", ["--input", "-", "--plot", "--line", "5"], 2,
        r"--line, --plot do not apply to --input: leave them out"),
    Row("--input with --html", ["--input", "-", "--html"], 2, r"--html does not apply to --input"),
    Row("--text with --line", ["--text", "Guten Morgen.", "--line", "3"], 2, r"--line does not apply to --text"),
    Row("--eval with --lin (abbreviated)", ["--eval", "--lin", "5"], 2, r"--line does not apply to --eval"),
    Row("--test with a training flag", ["--test", "--max-steps", "5", "--resume"], 2,
        r"--resume, --max-steps do not apply to --test"),
    Row("--train with --beam", ["--train", *TINY, "--out-dir", "{tmp}/run", "--beam", "4"], 2,
        r"--beam does not apply to --train"),
    Row("--curves with --checkpoint", ["--curves", "--checkpoint", "x.pth"], 2,
        r"--checkpoint does not apply to --curves"),
    Row("--layer without --plot", ["--test", "--layer", "1"], 2, r"--layer does not apply to --test: --layer needs "
                                                                 "--plot"),
    Row("export over an existing file", ["--export", "{tmp}/run/last.pth", "--checkpoint", "{translator}"], 1,
        "already exists: add --force", old_run, old_run_kept),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_each_row_ends_in_a_result_or_one_line_that_says_what_to_do(row, files, tmp_path, capsys, single_process,
                                                                    monkeypatch):
    if row.setup:
        row.setup(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))  # never the terminal's
    if row.patch:
        row.patch(monkeypatch)
    flags = [flag.format(tmp=tmp_path, **files) for flag in row.flags]
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main, flags, capsys)
    assert code == row.code, printed
    assert "Traceback" not in printed
    if code == 2:  # argparse: the usage, then one line
        printed = printed.strip().splitlines()[-1]
        assert ": error: argument " in printed or ": error: " in printed, printed
    elif code:
        assert printed.strip().count("\n") == 0, printed  # one line
    assert re.search(row.message, printed), printed
    if row.check:
        assert row.check(tmp_path) is not False


# ---- rows that need a second process or a failure in the middle of a run -----------------------------------------

def tiny_flags(out_dir, *more):
    return ["--train", *[flag.format(**FILES) for flag in TINY], "--out-dir", str(out_dir), *more]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_save_last_pth_and_say_how_to_resume_and_a_second_run_is_refused_meanwhile(
        signum, files, tmp_path, capsys, single_process):
    out_dir = tmp_path / "run"
    flags = tiny_flags(out_dir, "--max-steps", "100000", "--eval-every", "100000")
    process = subprocess.Popen([sys.executable, os.path.join(REPOSITORY, "run_translation.py"), *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"))
    try:
        assert process.stdout.readline().startswith("Training on cpu")
        time.sleep(1.0)  # into the loop
        code, printed = cli_outcome(run_translation.parse_args, run_translation.main, tiny_flags(out_dir), capsys)
        assert code == 1 and f"is in use by the run of process {process.pid}" in printed, printed
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, err
    last = err.strip().splitlines()[-1]
    step = torch.load(out_dir / "last.pth", weights_only=True)["step"]
    assert step > 0 and last == (f"Interrupted by {signal.Signals(signum).name} at step {step}: {out_dir}/last.pth "
                                 f"saved; continue with: python run_translation.py --train --resume --out-dir "
                                 f"{out_dir}")
    assert "Traceback" not in err and not (out_dir / "run.lock").exists()


def test_an_out_dir_that_cannot_be_written_mid_run_names_it_and_the_step_last_pth_keeps(files, tmp_path, capsys,
                                                                                        monkeypatch, single_process):
    """The write of step 4's checkpoints works, step 8's fails (as when the folder is made read-only, which root's
    tests cannot do with chmod): one line naming the folder, the step last.pth holds and how to resume; the log
    holds no record past that step."""
    import tempfile
    out_dir = tmp_path / "run"
    real = tempfile.mkstemp

    def failing(*args, **options):
        if (out_dir / "last.pth").exists():
            raise PermissionError(13, "Permission denied")
        return real(*args, **options)
    monkeypatch.setattr(tempfile, "mkstemp", failing)
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main,
                                tiny_flags(out_dir, "--max-steps", "8", "--eval-every", "4"), capsys)
    last = printed.strip().splitlines()[-1]
    assert code == 1 and last == (f"error: cannot write into --out-dir {out_dir} (Permission denied): make it "
                                  f"writable (or free space), then {out_dir}/last.pth is kept at step 4; continue "
                                  f"with: python run_translation.py --train --resume --out-dir {out_dir}"), printed
    assert [json.loads(line)["step"] for line in (out_dir / "log.jsonl").read_text().splitlines()] == [4]
    monkeypatch.setattr(tempfile, "mkstemp", real)
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main,
                                tiny_flags(out_dir, "--resume", "--max-steps", "8", "--eval-every", "4"), capsys)
    assert code == 0, printed
    assert [json.loads(line)["step"] for line in (out_dir / "log.jsonl").read_text().splitlines()] == [4, 8]


@pytest.mark.parametrize("log_damage", ["ahead", "behind"])
def test_the_log_agrees_with_last_pth_after_a_kill_between_their_writes(log_damage, files, tmp_path, capsys,
                                                                        single_process):
    """A run killed between saving last.pth and logging (or, before this was fixed, logging and saving): the
    resumed run logs each validation once, so --curves counts each once."""
    out_dir = tmp_path / "run"
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main,
                                tiny_flags(out_dir, "--max-steps", "4", "--eval-every", "4"), capsys)
    assert code == 0, printed
    log = out_dir / "log.jsonl"
    record = json.loads(log.read_text())
    if log_damage == "ahead":  # a validation logged whose last.pth was never written
        log.write_text(log.read_text() + json.dumps(dict(record, step=8)) + "\n")
    else:  # last.pth of step 4 written, its record not logged
        log.write_text("")
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main,
                                tiny_flags(out_dir, "--resume", "--max-steps", "8", "--eval-every", "4"), capsys)
    assert code == 0, printed
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [4, 8]
    assert json.loads(log.read_text().splitlines()[0]) == record


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_inside_a_step_ends_the_run_after_it_and_restores_the_handler(signum, tmp_path, single_process):
    """In-process: the step the signal arrives in completes, last.pth of that step is saved, the exception names the
    signal, and the signal's handler is the default again afterwards."""
    from lib.training.loop import TrainingInterrupted
    from tests.conftest import tiny_config, train_recording
    config = tiny_config(tmp_path, max_steps=40, eval_every=100)
    assert signal.getsignal(signum) is signal.SIG_DFL

    def send(step):
        if step == 3:
            os.kill(os.getpid(), signum)
    with pytest.raises(TrainingInterrupted) as caught:
        train_recording(config, action=send)
    assert caught.value.signum == signum and caught.value.step == 3
    assert str(caught.value).startswith(f"Interrupted by {signal.Signals(signum).name} at step 3: ")
    assert torch.load(os.path.join(config.out_dir, "last.pth"), weights_only=True)["step"] == 3
    assert signal.getsignal(signum) is signal.SIG_DFL
