"""tools/train_on_gpu.sh: run on the CPU with a tiny corpus and model, it trains, exports the float16 translator and
writes OUT/valid.txt, whose lines are --eval --compare's for that translator against BASELINE on the valid split of
the corpus it trained on; refused calls as rows of (arguments, exit code, a fragment of what is printed), each checking
that nothing of an earlier call was overwritten."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import sacrebleu
import torch

from lib.translation.corpus import read_tsv, split_corpus
from lib.translation.significance import paired_bootstrap
from lib.files import REPOSITORY
from lib.translation.translator import Translator
from tests.helpers import random_translator, write_tsv

GPU_SCRIPT = os.path.join(REPOSITORY, "tools", "train_on_gpu.sh")


def earlier_call(*names):
    """A setup: folder/out holds an earlier call's ``names`` (files, or run/ files)."""
    def setup(folder):
        for name in names:
            path = folder / "out" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("earlier")
    return setup


def earlier_call_kept(folder):
    for path in (folder / "out").rglob("*"):
        assert path.is_dir() or path.read_text() == "earlier", path


GPU_ROWS = [
    ("a second call on one OUT", ["{tmp}/out", "1"], earlier_call("translator.pth", "valid.txt", "run/last.pth"), 1,
     r"error: .*/out holds an earlier run .*: add --resume to continue it, or --force to start over"),
    ("an OUT whose run alone is left", ["{tmp}/out", "1"], earlier_call("run/log.jsonl"), 1,
     "holds an earlier run"),
    ("too few arguments", ["{tmp}/out"], None, 2, "Usage: tools/train_on_gpu.sh OUT MINUTES"),
]


@pytest.mark.skipif(shutil.which("bash") is None, reason="train_on_gpu.sh is a bash script")
@pytest.mark.parametrize("name, arguments, setup, code, message", GPU_ROWS, ids=[row[0] for row in GPU_ROWS])
def test_train_on_gpu_rows(name, arguments, setup, code, message, tmp_path):
    if setup:
        setup(tmp_path)
    result = subprocess.run(["bash", GPU_SCRIPT, *[argument.format(tmp=tmp_path) for argument in arguments]],
                            capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable), timeout=60)
    assert result.returncode == code and re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    if (tmp_path / "out").exists():
        earlier_call_kept(tmp_path)


def fake_python(folder):
    """An interpreter for the script that runs its own snippets (``python -``) with this one, answers "no GPU" and
    writes each command of run_translation.py to folder/calls as 'WORKING_FOLDER ARGUMENTS...'."""
    path = folder / "python"
    path.write_text(f"""#!/usr/bin/env bash
case $1 in
    -) exec {sys.executable} "$@" ;;
    -c) exit 1 ;;
esac
echo "$PWD ${{*:2}}" >> {folder / "calls"}
""")
    path.chmod(0o755)
    return str(path)


# (the flags after OUT MINUTES, CORPUS of the environment, the --corpus and --corpus-format that training and scoring
# get): a run in OUT/run stored with /runs/stored.tsv in tsv format
CORPUS_CHOICES = [
    (["--resume"], None, "/runs/stored.tsv tsv"),  # the run's own corpus
    (["--resume", "--corpus", "mine.tsv", "--corpus-format=tsv"], None, "mine.tsv tsv"),  # as given, from the caller
    (["--resume", "--corpus-format", "iwslt"], None, "{default} iwslt"),  # a corpus flag given: as given
    (["--resume"], "env.tsv", "env.tsv ding"),
    (["--force"], None, "{default} ding"),  # a new run: the default
]


@pytest.mark.skipif(shutil.which("bash") is None, reason="train_on_gpu.sh is a bash script")
@pytest.mark.parametrize("flags, corpus, passed", CORPUS_CHOICES, ids=[" ".join(row[0]) for row in CORPUS_CHOICES])
def test_the_corpus_of_each_call_and_paths_from_the_callers_folder(tmp_path, flags, corpus, passed):
    (tmp_path / "out" / "run").mkdir(parents=True)
    stored = {"config": {"corpus": "/runs/stored.tsv", "corpus_format": "tsv"}}
    torch.save(stored, tmp_path / "out" / "run" / "last.pth")
    caller = tmp_path / "caller"
    caller.mkdir()
    environment = {name: value for name, value in os.environ.items() if name not in ("CORPUS", "CORPUS_FORMAT")}
    environment.update(PYTHON=fake_python(tmp_path), DING_DICTIONARY=str(tmp_path / "no-dictionary"),
                       BASELINE="none.pth", **({"CORPUS": corpus} if corpus else {}))
    result = subprocess.run(["bash", GPU_SCRIPT, "../out", "1", *flags], capture_output=True, text=True,
                            env=environment, cwd=caller, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 3 and all(call.startswith(f"{caller} ") for call in calls)  # train, export, score
    default = os.path.join(REPOSITORY, ".corpus", "de-en")
    expected = passed.format(default=default if os.path.isfile(default) else tmp_path / "no-dictionary").split()
    for call in (calls[0], calls[2]):
        words = call.split()
        assert words[words.index("--corpus") + 1:words.index("--corpus") + 4:2] == expected, call
    assert f"--out-dir {tmp_path}/out/run " in calls[0]


@pytest.mark.skipif(shutil.which("bash") is None, reason="train_on_gpu.sh is a bash script")
@pytest.mark.parametrize("corpus_given", ["environment", "flags"])
def test_the_gpu_script_trains_exports_and_compares_with_the_baseline(tmp_path, corpus_given):
    """The corpus from CORPUS/CORPUS_FORMAT with absolute paths, or from the training flags --corpus/--corpus-format
    with paths relative to the calling folder (OUT and BASELINE too): either way the translator is scored on the
    valid split of the corpus it trained on (not on the dictionary, which is made missing)."""
    pairs = [(f"Ich sehe {number} {german}.", f"I see {number} {english}.") for number in range(60)
             for german, english in (("Hunde", "dogs"), ("Katzen", "cats"), ("Vögel", "birds"))]
    corpus = tmp_path / "tiny.tsv"
    write_tsv(corpus, pairs)
    baseline = tmp_path / "baseline.pth"
    random_translator(pairs, 60, std=0.6, max_len=32, embed_dim=8, enc_layers=1, dec_layers=1,
                      num_heads=2).save(str(baseline))
    environment = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPOSITORY,
                       DING_DICTIONARY=str(tmp_path / "no-dictionary"))
    flags = ["--max-steps", "2", "--eval-every", "1", "--de-vocab-size", "60", "--en-vocab-size", "60",
             "--embed-dim", "8", "--enc-layers", "1", "--dec-layers", "1", "--num-heads", "2", "--max-len", "32",
             "--batch-tokens", "300", "--threads", "1"]
    if corpus_given == "environment":
        environment.update(CORPUS=str(corpus), CORPUS_FORMAT="tsv", BASELINE=str(baseline))
        out, shown_baseline = str(tmp_path / "out"), str(baseline)
    else:
        environment.pop("CORPUS", None)
        environment.pop("CORPUS_FORMAT", None)
        environment["BASELINE"] = shown_baseline = "baseline.pth"
        flags += ["--corpus", "tiny.tsv", "--corpus-format=tsv"]
        out = "out"
    result = subprocess.run(["bash", os.path.join(REPOSITORY, "tools", "train_on_gpu.sh"), out, "1", *flags],
                            capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    exported = torch.load(tmp_path / "out" / "translator.pth", weights_only=True)
    assert exported["info"]["step"] in (1, 2)  # the run's best.pth
    assert {value.dtype for value in exported["model"].values() if value.is_floating_point()} == {torch.float16}
    trained = Translator.load(str(tmp_path / "out" / "translator.pth"))
    valid = split_corpus(read_tsv(str(corpus)))["valid"]
    references = [pair.english for pair in valid]
    hypotheses = trained.translate([pair.german for pair in valid])
    baseline_hypotheses = Translator.load(str(baseline)).translate([pair.german for pair in valid])
    comparison = paired_bootstrap(references, baseline_hypotheses, hypotheses)
    lines = (tmp_path / "out" / "valid.txt").read_text().splitlines()
    assert lines == [f"{len(valid)} valid sentences, greedy",
                     f"baseline {shown_baseline}: BLEU {comparison['BLEU'].baseline:.2f} "
                     f"chrF {comparison['chrF'].baseline:.2f}",
                     "gain over the baseline, paired bootstrap of 1000 resamples: "
                     f"{comparison['BLEU'].describe()}; {comparison['chrF'].describe()}",
                     f"BLEU {sacrebleu.corpus_bleu(hypotheses, [references]).score:.2f} "
                     f"chrF {sacrebleu.corpus_chrf(hypotheses, [references]).score:.2f}"]
    assert result.stdout.endswith("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
