"""Bad input to run_translation.py, table by table: each value (negative, zero, NaN, huge, of the wrong type, a file of
the wrong kind: a folder, random bytes, text, Latin-1) must end in one clear line, never a traceback.

Parser errors end with argparse's "<prog>: error: ..." line (exit 2); errors found by ``main`` with
lib/cli.run_main's "error: ..." (exit 1). A tiny random translator (1 encoder and 1 decoder layer) and a made-up
tab-separated corpus stand in for the shipped ones; a few cases also run as real processes.
"""
import os
import re
import subprocess
import sys

import numpy
import pytest
import torch

import lib.training.loop
import run_translation
from lib.cli import run_main
from lib.translation.corpus import DING_PATH
from lib.translation.translator import REPOSITORY, SHIPPED_CHECKPOINT, Translator
from tests.conftest import random_translator

SCRIPT = os.path.join(REPOSITORY, "run_translation.py")
NOUNS = [("Haus", "house"), ("Auto", "car"), ("Buch", "book"), ("Boot", "boat"), ("Bild", "picture"),
         ("Zimmer", "room"), ("Fenster", "window"), ("Glas", "glass"), ("Dach", "roof"), ("Bett", "bed")]
COLOURS = [("rot", "red"), ("blau", "blue"), ("alt", "old"), ("neu", "new"), ("klein", "small"), ("groß", "big"),
           ("sauber", "clean"), ("teuer", "expensive"), ("billig", "cheap"), ("leer", "empty"), ("warm", "warm"),
           ("kalt", "cold"), ("hell", "bright"), ("dunkel", "dark"), ("schön", "beautiful")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Paths: a good corpus and translator, and files of every wrong kind."""
    folder = tmp_path_factory.mktemp("cli")
    pairs = [(f"Das {german} ist {colour}.", f"The {english} is {colour_en}.")
             for german, english in NOUNS for colour, colour_en in COLOURS]
    names = {"corpus": "corpus.tsv", "translator": "translator.pth", "random": "random.bin", "notes": "notes.txt",
             "latin1": "latin1.txt", "phrases": "phrases.tsv", "numpy": "numpy.pth", "existing": "existing.pth",
             "file": "a file", "log": "log"}
    paths = {name: folder / file_name for name, file_name in names.items()}
    paths["corpus"].write_text("".join(f"{german}\t{english}\n" for german, english in pairs), encoding="utf-8")
    random_translator(pairs, 60, max_len=16, embed_dim=8, enc_layers=1, dec_layers=1,
                      num_heads=2).save(str(paths["translator"]))
    paths["random"].write_bytes(bytes((7 * i + 3) % 256 for i in range(4096)))
    paths["notes"].write_text("Ich sehe 3 Hunde.\nthis is text, not weights\n", encoding="utf-8")
    paths["latin1"].write_bytes("Das Haus ist rot.\tThe house is red.\nDas Haus ist schön.\tx\n".encode("latin-1"))
    paths["phrases"].write_text("Haus\thouse\nrotes Auto\tred car\n", encoding="utf-8")  # no full sentences
    torch.save({"array": numpy.zeros(3)}, paths["numpy"])
    paths["existing"].write_bytes(b"keep")
    paths["file"].write_text("not a folder")
    paths["log"].mkdir()
    (paths["log"] / "log.jsonl").write_text("{not json\n")
    paths["folder"] = folder
    return {name: str(path) for name, path in paths.items()}


def expand(flags, files):
    """Replace {name} in the flags by the path of that file."""
    return [flag.format(**files) for flag in flags]


# ---- values the parser refuses ------------------------------------------------------------------------------------

PARSER_CASES = [
    (["--test", "--batch-size", "-1"], "--batch-size: must be at least 1, got -1"),
    (["--eval", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["--test", "--batch-size", "nan"], "--batch-size: 'nan' is not a whole number"),
    (["--test", "--beam", "0"], "--beam: must be from 1 to 100, got 0"),
    (["--test", "--beam", "100000000000000000000"], "--beam: must be from 1 to 100"),
    (["--test", "--beam", "2.5"], "--beam: '2.5' is not a whole number"),
    (["--test", "--line", "0"], "--line: must be at least 1, got 0"),
    (["--test", "--line", "-3"], "--line: must be at least 1, got -3"),
    (["--test", "--line", "seven"], "--line: 'seven' is not a whole number"),
    (["--test", "--layer", "0"], "--layer: must be at least 1, got 0"),
    (["--test", "--layer", "1"], "--layer does not apply to --test: --layer needs --plot"),
    (["--test", "--no-repeat-ngram", "-1"], "--no-repeat-ngram: must be at least 0, got -1"),
    (["--input", "-", "--threads", "0"], "--threads: must be from 1 to 256, got 0"),
    (["--input", "-", "--threads", "100000"], "--threads: must be from 1 to 256, got 100000"),
    (["--test", "--split", "everything"], "--split: invalid choice"),
    (["--test", "--device", "gpu"], "--device: must be cpu, cuda or cuda:N, got 'gpu'"),
    (["--test", "--out", "figures"], "--out was renamed --figures-dir"),
    (["--test", "--eval"], "choose exactly one of"),
    ([], "choose exactly one of"),
    (["--train", "--lr", "nan"], "--lr: must be a finite number, got nan"),
    (["--train", "--lr", "inf"], "--lr: must be a finite number"),
    (["--train", "--lr", "-1"], "--lr: must be above 0, got -1"),
    (["--train", "--lr-schedule", "cosine"], "--lr-schedule: invalid choice"),
    (["--train", "--max-steps", "0"], "--max-steps: must be at least 1, got 0"),
    (["--train", "--max-steps", "1.5"], "--max-steps"),
    (["--train", "--dropout", "1"], "--dropout: must be at least 0 and below 1, got 1"),
    (["--train", "--seed", "-1"], "--seed: must be from 0 to"),
    (["--train", "--embed-dim", "1e30"], "--embed-dim"),
]


@pytest.mark.parametrize("flags, message", PARSER_CASES, ids=[" ".join(flags) or "none" for flags, _ in PARSER_CASES])
def test_the_parser_refuses_bad_values_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as exit:
        run_translation.parse_args(flags)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert ": error: " in last and message in last, last


# ---- inputs that main refuses (through run_main, as the script ends) ----------------------------------------------

USE = ["--checkpoint", "{translator}", "--corpus", "{corpus}", "--corpus-format", "tsv", "--no-show"]
MAIN_CASES = [
    (["--test", "--layer", "99", "--plot", "--figures-dir", "{folder}"] + USE, "--layer 99 is out of range: this "
                                                                               "translator has 1 decoder layer, so "
                                                                               "--layer must be from 1 to 1"),
    (["--test", "--line", "100000"] + USE, "out of range: the test split has"),
    (["--input", "{folder}"] + USE, "is a folder; give a file"),
    (["--input", "{folder}/missing.txt"] + USE, "does not exist"),
    (["--input", "{latin1}"] + USE, "latin1.txt is not UTF-8 text: line 2 has the byte 0xf6"),
    (["--input", "{random}"] + USE, "random.bin is not UTF-8 text: line [0-9]+ has the byte"),
    (["--test", "--corpus", "{folder}", "--checkpoint", "{translator}", "--corpus-format", "tsv"],
     "is a folder; give a file"),
    (["--test", "--corpus", "{latin1}", "--corpus-format", "tsv", "--checkpoint", "{translator}"],
     "latin1.txt is not UTF-8 text: line 2"),
    (["--eval", "--corpus", "{phrases}", "--corpus-format", "tsv", "--checkpoint", "{translator}"],
     "the test split of .*phrases.tsv is empty"),
    (["--test", "--corpus", "{phrases}", "--corpus-format", "tsv", "--checkpoint", "{translator}"],
     "the test split of the corpus .*phrases.tsv is empty"),
    (["--eval", "--split", "train"] + USE, "--eval scores held-out sentences: --split valid or test, not train"),
    (["--eval", "--split", "all", "--checkpoint", "{translator}"], "--split all only with a --corpus of your own"),
    (["--test", "--checkpoint", "{random}"], "random.bin is not a translator checkpoint"),
    (["--test", "--checkpoint", "{notes}"], "notes.txt is not a translator checkpoint"),
    (["--test", "--checkpoint", "{numpy}"], "numpy.pth is not a translator checkpoint: it holds Python objects"),
    (["--test", "--checkpoint", "{folder}"], "is a folder, not a translator checkpoint"),
    (["--test", "--checkpoint", "{folder}/none.pth"], "No checkpoint at"),
    (["--export", "{folder}/averaged.pth", "--average", "{translator}", "{random}"], "not a translator checkpoint"),
    (["--export", "{existing}", "--checkpoint", "{translator}"], "existing.pth already exists: add --force"),
    (["--export", "{folder}", "--checkpoint", "{translator}", "--force"], "is a folder; give a file name"),
    (["--test", "--plot", "--figures-dir", "{file}"] + USE, "--figures-dir .* is a file; give a folder"),
    (["--curves", "--out-dir", "{folder}/none"], "No training log at"),
    (["--curves", "--out-dir", "{log}", "--figures-dir", "{folder}"], "is not a training log of this library"),
    (["--train", "--out-dir", "{file}", "--device", "cpu"], "--out-dir .* is a file; give a folder"),
    (["--train", "--num-heads", "3", "--out-dir", "{folder}/run", "--device", "cpu"], "--num-heads"),
]


@pytest.mark.parametrize("flags, message", MAIN_CASES, ids=[" ".join(flags[:3]) for flags, _ in MAIN_CASES])
def test_main_refuses_bad_input_in_one_line(flags, message, files, capsys, monkeypatch):
    def never(*args, **options):
        raise AssertionError("training started despite bad input")
    monkeypatch.setattr(lib.training.loop, "train", never)
    args = run_translation.parse_args(expand(flags, files))
    with pytest.raises(SystemExit) as exit:
        run_main(run_translation.main, args)
    text = exit.value.code
    assert isinstance(text, str) and text.startswith("error: ") and "\n" not in text, text
    assert re.search(message, text), text
    assert "weights_only" not in text and "Traceback" not in capsys.readouterr().err
    assert os.path.exists(files["existing"]) and open(files["existing"], "rb").read() == b"keep"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused(files):
    args = run_translation.parse_args(expand(["--test", "--device", "cuda"] + USE, files))
    with pytest.raises(SystemExit, match="no CUDA GPU is available here"):
        run_main(run_translation.main, args)


# ---- library entry points -----------------------------------------------------------------------------------------

def test_the_translator_refuses_bad_arguments_clearly(files):
    translator = Translator.load(files["translator"])
    for call, message in [(lambda: translator.translate(["Das Haus ist rot."], batch_size=0), "batch_size"),
                          (lambda: translator.translate(["Das Haus ist rot."], beam=0), "beam"),
                          (lambda: translator.attention("   "), "the sentence is empty"),
                          (lambda: translator.attention("Das Haus ist rot.", layer=1), "has 1 decoder layer "),
                          (lambda: translator.evaluate([]), "nothing to evaluate")]:
        with pytest.raises(ValueError, match=message):
            call()


# ---- as real processes ---------------------------------------------------------------------------------------------

def run_script(flags, cwd, stdin=None):
    return subprocess.run([sys.executable, SCRIPT, *flags], cwd=cwd, capture_output=True, input=stdin,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)


def test_a_foreign_checkpoint_and_a_latin1_pipe_end_in_one_line_without_a_traceback(files):
    result = run_script(["--test", "--checkpoint", files["random"]], cwd=files["folder"])
    err = result.stderr.decode()
    assert result.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and "not a translator checkpoint" in err and "weights_only" not in err
    result = run_script(["--input", "-", "--checkpoint", files["translator"]], cwd=files["folder"],
                        stdin="Das Haus ist rot.\nDas Haus ist schön.\n".encode("latin-1"))
    err = result.stderr.decode()
    assert result.returncode == 1 and "standard input is not UTF-8 text: line 2" in err and "Traceback" not in err
    assert result.stdout.decode().count("\n") == 1  # the line before the bad one is translated


@pytest.mark.skipif(not (os.path.isfile(SHIPPED_CHECKPOINT) and os.path.isfile(DING_PATH)),
                    reason="needs the shipped translator and the Ding dictionary")
def test_the_shipped_translator_is_found_from_another_folder(tmp_path):
    result = run_script(["--test", "--line=7"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("Line 7 of the test split")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
