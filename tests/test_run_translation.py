"""Tests of run_translation.py, the script: its flags (one exclusive command, each value checked once by its range
type, flags that do not apply to the command refused, TrainConfig's fields as --train's flags, --amp/--no-amp), the
settings --train hands to the training loop, and the documented command lines, some as real processes.

Parser errors end with argparse's "<prog>: error: ..." line (exit 2). The command bodies (lib/translation/commands.py)
are tested in tests/translation/test_commands.py.
"""
import os
import re
import subprocess
import sys

import pytest

import run_translation
from lib.translation.corpus import DING_PATH
from lib.files import REPOSITORY
from lib.translation.translator import SHIPPED_CHECKPOINT

SCRIPT = os.path.join(REPOSITORY, "run_translation.py")


# ---- values and combinations the parser refuses ----------------------------------------------------------------------

PARSER_CASES = [
    (["--test", "--batch-size", "-1"], "--batch-size: must be from 1 to 4096, got -1"),
    (["--eval", "--batch-size", "0"], "--batch-size: must be from 1 to 4096, got 0"),
    (["--test", "--batch-size", "nan"], "--batch-size: 'nan' is not a whole number"),
    (["--test", "--beam", "0"], "--beam: must be from 1 to 100, got 0"),
    (["--test", "--beam", "100000000000000000000"], "--beam: must be from 1 to 100"),
    (["--test", "--beam", "2.5"], "--beam: '2.5' is not a whole number"),
    (["--test", "--line", "0"], "--line: must be from 1 to 10000000, got 0"),
    (["--eval", "--bootstrap-samples", "100000000"], "--bootstrap-samples: must be from 1 to 100000, got 100000000"),
    (["--input", "-", "--batch-size", "1000000"], "--batch-size: must be from 1 to 4096, got 1000000"),
    (["--train", "--max-len", "5000000"], "--max-len: must be from 1 to 1024, got 5000000"),
    (["--train", "--sentence-repeats", "100000"], "--sentence-repeats: must be from 0 to 1000, got 100000"),
    (["--train", "--batch-tokens", "1000000000"], "--batch-tokens: must be from 1 to 1000000, got 1000000000"),
    (["--train", "--embed-dim", "100000"], "--embed-dim: must be from 1 to 8192, got 100000"),
    (["--test", "--line", "-3"], "--line: must be from 1 to 10000000, got -3"),
    (["--test", "--line", "seven"], "--line: 'seven' is not a whole number"),
    (["--test", "--layer", "0"], "--layer: must be from 1 to 64, got 0"),
    (["--test", "--layer", "1"], "--layer does not apply to --test: --layer needs --plot"),
    (["--train", "--ffn-dim", "-1"], "--ffn-dim: must be from 1 to 65536, got -1"),
    (["--train", "--attention-dropout", "1"], "--attention-dropout: must be at least 0 and below 1, got 1"),
    (["--test", "--no-repeat-ngram", "-1"], "--no-repeat-ngram: must be from 0 to 100, got -1"),
    (["--input", "-", "--threads", "0"], "--threads: must be from 1 to 256, got 0"),
    (["--input", "-", "--threads", "100000"], "--threads: must be from 1 to 256, got 100000"),
    (["--test", "--split", "everything"], "--split: invalid choice"),
    (["--test", "--device", "gpu"], "--device: must be cpu, cuda or cuda:N, got 'gpu'"),
    (["--test", "--out", "figures"], "--out-dir does not apply to --test"),  # an abbreviation of --out-dir
    (["--test", "--eval"], "argument --eval: not allowed with argument --test"),
    ([], "one of the arguments --train --test --text --input --eval --curves --export is required"),
    (["--train", "--lr", "nan"], "--lr: must be a finite number, got nan"),
    (["--train", "--lr", "inf"], "--lr: must be a finite number"),
    (["--train", "--lr", "-1"], "--lr: must be above 0 and at most 10, got -1"),
    (["--train", "--lr-schedule", "cosine"], "--lr-schedule: invalid choice"),
    (["--train", "--max-steps", "0"], "--max-steps: must be from 1 to 100000000, got 0"),
    (["--train", "--max-steps", "1.5"], "--max-steps"),
    (["--train", "--dropout", "1"], "--dropout: must be at least 0 and below 1, got 1"),
    (["--train", "--seed", "-1"], "--seed: must be from 0 to"),
    (["--train", "--embed-dim", "1e30"], "--embed-dim"),
    *[([*action, "--beam", "4", f"--length-penalty={value}"],
       re.escape(f"--length-penalty: must be at least -10 and at most 10, got {float(value):g}") + "$")
      for value in ("1000", "1e308", "-1e308", "10.5")
      for action in (["--input", "-"], ["--test"], ["--eval"], ["--export", "x.pth"])],
    (["--input", "-", "--length-penalty=-1e308"], "must be at least -10"),
    # flags that do not apply to the command, named in the order of --help
    (["--input", "-", "--plot", "--line", "5"], r"--line, --plot do not apply to --input: leave them out"),
    (["--input", "-", "--html"], r"--html does not apply to --input"),
    (["--text", "Guten Morgen.", "--line", "3"], r"--line does not apply to --text"),
    (["--eval", "--lin", "5"], r"--line does not apply to --eval"),  # abbreviated
    (["--test", "--max-steps", "5", "--resume"], r"--resume, --max-steps do not apply to --test"),
    (["--train", "--out-dir", "run", "--beam", "4"], r"--beam does not apply to --train"),
    (["--curves", "--checkpoint", "x.pth"], r"--checkpoint does not apply to --curves"),
    (["--test", "--amp"], r"--amp does not apply to --test"),
]


@pytest.mark.parametrize("flags, message", PARSER_CASES, ids=[" ".join(flags) or "none" for flags, _ in PARSER_CASES])
def test_the_parser_refuses_bad_values_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as exit:
        run_translation.parse_args(flags)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert ": error: " in last and re.search(message, last), last


def test_each_command_alone_parses_with_the_defaults_of_the_flags_not_given():
    args = run_translation.parse_args(["--test", "--line=7", "--plot"])
    assert (args.test, args.line, args.plot, args.train, args.text, args.input, args.eval, args.export) == (
        True, 7, True, False, None, None, False, None)
    assert (args.split, args.beam, args.batch_size, args.figures_dir, args.checkpoint, args.amp) == (
        "test", None, 64, "results", SHIPPED_CHECKPOINT, None)
    assert not hasattr(args, "max_steps") and not hasattr(args, "corpus")  # training settings only when given
    assert run_translation.parse_args(["--text", ""]).text == ""  # given, though empty: refused by the command


@pytest.mark.parametrize("flags, amp", [([], None), (["--amp"], True), (["--no-amp"], False),
                                        (["--amp", "--no-amp"], False)])
def test_amp_is_on_off_or_unset(flags, amp):
    assert run_translation.parse_args(["--train", *flags]).amp is amp


def test_help_names_every_command_and_the_amp_default(capsys):
    with pytest.raises(SystemExit) as exit:
        run_translation.parse_args(["--help"])
    assert exit.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(--train | --test | --text GERMAN | --input FILE | --eval | --curves | --export PATH)" in text
    assert ("--amp, --no-amp bfloat16 autocast (default: on where the processor computes bfloat16 natively: "
            "avx512_bf16/AMX CPUs, bf16 GPUs)") in text
    assert "feed-forward hidden width (None or 0: 2 * --embed-dim, the exercise's) (default None)" in text


# ---- TrainConfig's fields as --train's flags -------------------------------------------------------------------------

def test_training_flags_come_from_the_fields_of_trainconfig():
    """Each field's flag, help from its metadata, --x / --no-x for bools; the translation flags keep their own
    meaning where a field has the same name (--device, --amp, --compile are the script's)."""
    parser = run_translation.build_parser()
    text = " ".join(parser.format_help().split())
    assert "--pre-norm, --no-pre-norm LayerNorm before each attention and feed-forward block" in text
    args = parser.parse_args(["--train", "--pre-norm", "--ffn-dim", "96", "--source-word-dropout", "0.25"])
    assert (args.pre_norm, args.ffn_dim, args.source_word_dropout) == (True, 96, 0.25)
    assert not parser.parse_args(["--train", "--no-pre-norm"]).pre_norm
    for bad in (["--word-dropout", "0.1"], ["--source-word-dropout", "nan"], ["--ffn-dim", "1.5"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--train", *bad])


# ---- as real processes -----------------------------------------------------------------------------------------------

def run_script(flags, cwd, stdin=None):
    return subprocess.run([sys.executable, SCRIPT, *flags], cwd=cwd, capture_output=True, input=stdin,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)


def test_a_foreign_checkpoint_and_a_latin1_pipe_end_in_one_line_without_a_traceback(bad_input_files):
    result = run_script(["--test", "--checkpoint", bad_input_files["random"]], cwd=bad_input_files["folder"])
    err = result.stderr.decode()
    assert result.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and "not a translator checkpoint" in err and "weights_only" not in err
    result = run_script(["--input", "-", "--checkpoint", bad_input_files["translator"]], cwd=bad_input_files["folder"],
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


@pytest.mark.skipif(not (os.path.exists(SHIPPED_CHECKPOINT) and os.path.exists(DING_PATH)),
                    reason="needs the shipped translator and the Ding dictionary")
def test_shipped_translator_on_test_line_7(capsys, tmp_path):
    """The README's command: the seventh held-out sentence, translated by the shipped model, with its heatmaps."""
    run_translation.main(run_translation.parse_args(["--test", "--line=7", "--plot", "--no-show",
                                                     "--figures-dir", str(tmp_path)]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Line 7 of the test split (1101 pairs)"
    assert lines[1].startswith("German:      Die Hauptakteure beim kolonialen Kräftemessen")
    assert lines[3].startswith("Translation: ") and len(lines[3]) > len("Translation: ") + 5
    assert lines[4] == "Seen in training: no"
    assert (tmp_path / "translation_attention_line7.png").stat().st_size > 10_000


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
