"""Tests of lib/translation/commands.py, the commands of run_translation.py (test one line and plot its attention,
translate a text, a file or standard input, evaluate and compare, average and export, draw a run's curves, and the
train wrapper), run through the script's parse_args and main as a user runs them, with a tiny random translator and
small made-up tab-separated corpora.

Bad input must end in one clear line, never a traceback: errors found by a command end with lib.cli.run_main's
"error: ..." (exit 1). The rows of a table may prepare their folder first (a run's files, a lock) and check it
afterwards (nothing overwritten).
"""
import dataclasses
import gzip
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
import sacrebleu
import torch

import lib.training.loop
import run_translation
from lib.cli import run_main
from lib.translation.corpus import DING_PATH, read_tsv, split_corpus
from lib.translation.significance import paired_bootstrap
from lib.transformer import TransformerModel
from lib.files import REPOSITORY
from lib.translation.translator import SHIPPED_CHECKPOINT, Translator
from tests.helpers import (cli_outcome, corpus_and_translator, random_translator, run_translation_with, stop_by,
                           tiny_config, train_recording, write_corpus)

ANIMALS = [("Hunde", "dogs"), ("Katzen", "cats"), ("Vögel", "birds"), ("Pferde", "horses"), ("Fische", "fish")]


def make_pairs():
    """300 made-up sentence pairs: 'Ich sehe 7 Hunde.' -> 'I see 7 dogs.'."""
    return [(f"Ich sehe {number} {german}.", f"I see {number} {english}.")
            for number in range(60) for german, english in ANIMALS]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """(corpus path, checkpoint path, translator) shared by the tests of this module."""
    torch.set_num_threads(1)
    return corpus_and_translator(tmp_path_factory.mktemp("run_translation"), make_pairs(), 90, max_len=24,
                                 embed_dim=16, enc_layers=1, dec_layers=2, num_heads=2)


run = run_translation_with


# ---- --test, --text: one sentence, its attention ---------------------------------------------------------------------


def test_test_line_prints_source_reference_translation(setting, capsys, tmp_path):
    corpus, _, translator = setting
    test_pairs = split_corpus(read_tsv(corpus))["test"]
    assert len(test_pairs) >= 3
    run(setting, "--test", "--line=2", "--plot", "--figures-dir", str(tmp_path))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Line 2 of the test split ({len(test_pairs)} pairs)"
    assert lines[1] == f"German:      {test_pairs[1].german}"
    assert lines[2] == f"Reference:   {test_pairs[1].english}"
    assert lines[3] == f"Translation: {translator.translate([test_pairs[1].german])[0]}"
    assert lines[4] == "Seen in training: no"
    assert (tmp_path / "translation_attention_line2.png").stat().st_size > 5000


def test_plot_draws_the_attention_behind_the_printed_beam_translation(setting, capsys, tmp_path, monkeypatch):
    corpus, _, translator = setting
    test_pairs = split_corpus(read_tsv(corpus))["test"]
    differ = [number for number, pair in enumerate(test_pairs, 1)
              if translator.translate([pair.german], beam=4) != translator.translate([pair.german])]
    assert differ, "some test line should translate differently with a beam"
    line, drawn = differ[0], {}

    def capture(source_pieces, output_pieces, weights, title=""):
        drawn.update(output_pieces=output_pieces, weights=weights, title=title)
        return real(source_pieces, output_pieces, weights, title)
    import lib.plot
    real = lib.plot.show_translation_attention
    monkeypatch.setattr(lib.plot, "show_translation_attention", capture)
    run(setting, "--test", f"--line={line}", "--plot", "--beam", "4", "--layer", "1", "--figures-dir", str(tmp_path))
    printed = capsys.readouterr().out.splitlines()[3][len("Translation: "):]
    german = test_pairs[line - 1].german
    assert printed == translator.translate([german], beam=4)[0]
    expected = translator.attention(german, layer=0, beam=4)
    assert expected[2] == printed and drawn["output_pieces"] == expected[1]
    torch.testing.assert_close(drawn["weights"], expected[3])
    assert "decoder layer 1 (beam 4 translation)" in drawn["title"]


def test_train_split_lines_are_seen_in_training(setting, capsys):
    corpus, _, _ = setting
    first_train = split_corpus(read_tsv(corpus))["train"][0]
    run(setting, "--test", "--line=1", "--split", "train")
    out = capsys.readouterr().out
    assert f"German:      {first_train.german}" in out and "Seen in training: yes" in out


def test_line_out_of_range_gives_the_valid_range(setting):
    corpus, _, _ = setting
    count = len(split_corpus(read_tsv(corpus))["test"])
    with pytest.raises(ValueError, match=f"between 1 and {count}"):
        run(setting, "--test", f"--line={count + 1}")
    with pytest.raises(SystemExit):  # refused by the parser: see tests/test_run_translation.py
        run(setting, "--test", "--line=0")


@pytest.mark.skipif(not (os.path.exists(SHIPPED_CHECKPOINT) and os.path.exists(DING_PATH)),
                    reason="needs the shipped translator and the Ding dictionary")
def test_ngram_blocking_removes_the_repetition_of_test_line_961(capsys):
    """Line 961 ('Das macht doch den Effekt zunichte.') comes out as 'That makes the effect of the effect.' greedy and
    with the shipped decoding; blocking repeated bigrams removes the repetition in both searches."""
    def words_of_translation(*flags):
        run_translation.main(run_translation.parse_args(["--test", "--line=961", *flags]))
        translation = capsys.readouterr().out.splitlines()[3][len("Translation: "):]
        return [word.strip(",.") for word in translation.split()]

    def repeated_bigrams(words):
        bigrams = list(zip(words, words[1:]))
        return {bigram for bigram in bigrams if bigrams.count(bigram) > 1}

    assert ("the", "effect") in repeated_bigrams(words_of_translation())
    assert ("the", "effect") in repeated_bigrams(words_of_translation("--beam", "1"))
    for flags in (["--no-repeat-ngram", "2", "--beam", "1"], ["--no-repeat-ngram", "2"]):
        assert repeated_bigrams(words_of_translation(*flags)) == set(), flags


# ---- --input: a file or standard input, line by line -----------------------------------------------------------------


def test_input_file_keeps_order_and_empty_lines(setting, capsys, tmp_path, monkeypatch):
    _, _, translator = setting
    lines = ["Ich sehe 3 Hunde.", "", "Ich sehe 12 Katzen.", "Ich sehe 40 Pferde."]
    source = tmp_path / "input.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run(setting, "--input", str(source), "--batch-size", "3")
    captured = capsys.readouterr()
    expected = [translator.translate([line])[0] if line else "" for line in lines]
    assert len(set(expected)) >= 3 and captured.out.split("\n")[:-1] == expected
    assert "4/4" in captured.err  # the progress bar, on stderr
    with pytest.warns(UserWarning, match="input line 3 has"):
        Translator(translator.model, translator.de_vocab, translator.en_vocab).translate(
            ["Ich sehe 3 Hunde.", "", "Ich sehe 12 Katzen und 13 Vögel und 14 Pferde und 15 Fische."])
    monkeypatch.setattr(sys, "stdin", open(source, encoding="utf-8"))
    run(setting, "--input", "-", "--beam", "3")
    captured = capsys.readouterr()
    assert captured.out.split("\n")[:-1] == [translator.translate([line], beam=3)[0] for line in lines]
    assert captured.err == ""  # no progress bar for standard input


@pytest.mark.parametrize("where", ["file", "standard input"])
def test_a_gzip_input_whatever_its_name_translates_as_the_plain_one(where, setting, capsys, tmp_path, monkeypatch):
    plain, packed = tmp_path / "plain.txt", tmp_path / "packed.txt"
    plain.write_text("Ich sehe 3 Hunde.\nIch sehe 12 Katzen.\n", encoding="utf-8")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    printed = []
    for path in (plain, packed):
        with open(path, "rb") as stream:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stream))
            run(setting, "--input", str(path) if where == "file" else "-", "--no-progress")
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and printed[0].count("\n") == 2


class Recorder(io.StringIO):
    """A stdout that notes what had been written at each flush."""

    def __init__(self):
        super().__init__()
        self.flushed = []

    def flush(self):
        self.flushed.append(self.getvalue().count("\n"))


@pytest.mark.parametrize("threads, written_when_read", [(1, [0, 0, 0, 3, 3, 3, 6]),  # lines 1-3 out before 4 is read
                                                        (2, [0, 0, 0, 0, 0, 0, 3])])  # two batches in flight
def test_input_is_written_batch_by_batch_while_it_is_read(setting, monkeypatch, tmp_path, threads, written_when_read):
    """A file (here standard input redirected from one) is read as fast as its batches are decoded."""
    _, _, translator = setting
    regular = open(tmp_path / "redirected.txt", "w")
    lines = [f"Ich sehe {number} Hunde." for number in range(7)]
    reads = []
    stdout = Recorder()

    class Input:
        """A standard input that notes, as each line is read, how many output lines were written by then."""

        def __iter__(self):
            for line in lines:
                reads.append(stdout.getvalue().count("\n"))
                yield line + "\n"

        def isatty(self):
            return False

        def fileno(self):
            return regular.fileno()
    monkeypatch.setattr(sys, "stdin", Input())
    monkeypatch.setattr(sys, "stdout", stdout)
    with regular:
        run(setting, "--input", "-", "--batch-size", "3", "--threads", str(threads))
    assert stdout.getvalue().split("\n")[:-1] == translator.translate(lines)
    assert stdout.flushed == [3, 6, 7] and reads == written_when_read


def test_a_latin1_input_file_is_refused_before_any_output(setting, capsys, tmp_path):
    source = tmp_path / "latin1.txt"
    source.write_bytes("Ich sehe 3 Hunde.\nIch sehe 4 Vögel.\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8 text: line 2 has the byte 0xf6") as error:
        run(setting, "--input", str(source))
    assert "iconv" in str(error.value) and capsys.readouterr().out == ""


# ---- --eval, --compare -----------------------------------------------------------------------------------------------

def test_eval_prints_sacrebleus_bleu_and_chrf_of_the_test_split_last(setting, capsys):
    corpus, _, translator = setting
    pairs = split_corpus(read_tsv(corpus))["test"]
    hypotheses = translator.translate([pair.german for pair in pairs])
    references = [[pair.english for pair in pairs]]
    assert len(set(hypotheses)) > 1
    run(setting, "--eval")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == f"{len(pairs)} test sentences, greedy"
    assert lines[-1] == (f"BLEU {sacrebleu.corpus_bleu(hypotheses, references).score:.2f} "
                         f"chrF {sacrebleu.corpus_chrf(hypotheses, references).score:.2f}")


def test_eval_scores_the_valid_split_on_request_and_refuses_train(setting, capsys):
    run(setting, "--eval", "--split", "valid")
    assert "valid sentences" in capsys.readouterr().out
    run(setting, "--eval", "--split", "valid", "--no-repeat-ngram", "2")
    assert "no repeated 2-grams" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--split valid or test"):
        run(setting, "--eval", "--split", "train")


def test_eval_of_a_corpus_of_ones_own_scores_all_its_pairs_in_order(setting, capsys, tmp_path):
    corpus, _, translator = setting
    pairs = read_tsv(corpus)[:7]  # phrases and sentences alike: a test set of one's own is used whole
    own = tmp_path / "own.tsv"
    own.write_text("".join(f"{pair.german}\t{pair.english}\n" for pair in pairs))
    hypotheses = translator.translate([pair.german for pair in pairs])
    references = [[pair.english for pair in pairs]]
    run(setting, "--eval", "--split", "all", "--corpus", str(own))
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == f"7 pairs of {own}, greedy"
    assert lines[-1] == (f"BLEU {sacrebleu.corpus_bleu(hypotheses, references).score:.2f} "
                         f"chrF {sacrebleu.corpus_chrf(hypotheses, references).score:.2f}")


def test_eval_compare_scores_the_baseline_and_tests_the_gain_by_paired_bootstrap(setting, capsys, tmp_path):
    corpus, _, translator = setting
    baseline = random_translator(make_pairs(), 90, std=0.6, seed=1, max_len=24, embed_dim=16, enc_layers=1,
                                 dec_layers=2, num_heads=2)
    baseline_path = tmp_path / "baseline.pth"
    baseline.save(str(baseline_path))
    pairs = split_corpus(read_tsv(corpus))["valid"]
    references = [pair.english for pair in pairs]
    hypotheses, baseline_hypotheses = (system.translate([pair.german for pair in pairs])
                                       for system in (translator, baseline))
    assert hypotheses != baseline_hypotheses
    run(setting, "--eval", "--split", "valid", "--compare", str(baseline_path), "--bootstrap-samples", "30")
    lines = capsys.readouterr().out.strip().splitlines()
    expected = paired_bootstrap(references, baseline_hypotheses, hypotheses, samples=30)
    baseline_bleu = sacrebleu.corpus_bleu(baseline_hypotheses, [references]).score
    assert lines[-3] == (f"baseline {baseline_path}: BLEU {baseline_bleu:.2f} "
                         f"chrF {sacrebleu.corpus_chrf(baseline_hypotheses, [references]).score:.2f}")
    assert lines[-2] == ("gain over the baseline, paired bootstrap of 30 resamples: "
                         f"{expected['BLEU'].describe()}; {expected['chrF'].describe()}")
    assert lines[-1] == (f"BLEU {sacrebleu.corpus_bleu(hypotheses, [references]).score:.2f} "
                         f"chrF {sacrebleu.corpus_chrf(hypotheses, [references]).score:.2f}")


def test_compare_needs_eval_and_a_readable_checkpoint(setting, tmp_path):
    with pytest.raises(SystemExit):  # "--compare does not apply to --test"
        run(setting, "--test", "--compare", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"--compare {tmp_path / 'none.pth'} does not exist"):
        run(setting, "--eval", "--compare", str(tmp_path / "none.pth"))


# ---- --average, --export ---------------------------------------------------------------------------------------------


def test_average_of_two_checkpoints_is_the_mean_of_their_weights(setting, tmp_path, capsys):
    _, checkpoint, translator = setting
    other = Translator(TransformerModel(**translator.model.config()), translator.de_vocab, translator.en_vocab)
    other_path = tmp_path / "other.pth"
    other.save(str(other_path))
    averaged_path = tmp_path / "averaged.pth"
    run(setting, "--average", checkpoint, str(other_path), "--export", str(averaged_path))
    averaged = Translator.load(str(averaged_path)).model.state_dict()
    first, second = translator.model.state_dict(), other.model.state_dict()
    for name, value in averaged.items():
        torch.testing.assert_close(value, ((first[name] + second[name]) / 2).half().float(), msg=name)
    assert not torch.equal(averaged["decoder_final_dense.weight"], first["decoder_final_dense.weight"])


def test_snapshots_keep_the_newest_few(setting, tmp_path):
    from lib.training.loop import save_snapshot
    _, _, translator = setting
    for step in (250, 500, 750):
        kept = save_snapshot(translator, str(tmp_path), step, keep=2)
    assert [os.path.basename(path) for path in kept] == ["step0000500.pth", "step0000750.pth"]
    assert sorted(os.listdir(tmp_path / "snapshots")) == ["step0000500.pth", "step0000750.pth"]
    assert Translator.load(kept[-1]).translate(["Ich sehe 3 Hunde."]) == translator.translate(["Ich sehe 3 Hunde."])
    assert save_snapshot(translator, str(tmp_path), 1000, keep=0) == []
    assert os.listdir(tmp_path / "snapshots") == []


def test_average_refuses_checkpoints_of_different_models(setting, tmp_path):
    _, checkpoint, translator = setting
    config = dict(translator.model.config(), embed_dim=8)
    other_path = tmp_path / "other.pth"
    Translator(TransformerModel(**config), translator.de_vocab, translator.en_vocab).save(str(other_path))
    with pytest.raises(ValueError, match="another configuration or vocabulary"):
        Translator.average([checkpoint, str(other_path)])


def test_export_writes_the_weights_rounded_to_float16(setting, tmp_path, capsys):
    _, checkpoint, translator = setting
    exported = tmp_path / "exported.pth"
    run(setting, "--export", str(exported))
    assert "float16" in capsys.readouterr().out
    stored = torch.load(exported, weights_only=True)["model"]
    original = translator.model.state_dict()
    assert stored.keys() == original.keys()
    for name, value in original.items():
        assert stored[name].dtype == torch.float16 and torch.equal(stored[name], value.half()), name
    assert not all(torch.equal(value.half().float(), value) for value in original.values())  # rounding shows


def test_export_stores_the_decoding_given_and_the_commands_use_it_unless_told_otherwise(setting, tmp_path, capsys):
    corpus, _, translator = setting
    exported = str(tmp_path / "exported.pth")
    run(setting, "--export", exported, "--beam", "3", "--length-penalty", "0.5")
    assert capsys.readouterr().out.endswith("its decoding: beam 3, length penalty 0.5\n")
    stored = Translator.load(exported)
    assert stored.decoding == {"beam": 3, "length_penalty": 0.5} and translator.decoding["beam"] == 1
    pairs = split_corpus(read_tsv(corpus))["valid"]
    expected = {beam: stored.evaluate(pairs, beam=beam, length_penalty=0.5)[:2] for beam in (1, 3)}
    assert expected[1] != expected[3], "beam 3 should score differently from greedy here"

    def evaluate(*flags):
        run_translation.main(run_translation.parse_args(["--checkpoint", exported, "--corpus", corpus,
                                                         "--corpus-format", "tsv", "--eval", "--split", "valid",
                                                         *flags]))
        return capsys.readouterr().out.strip().splitlines()
    lines = evaluate()  # the stored decoding
    assert lines == [f"{len(pairs)} valid sentences, beam 3, length penalty 0.5",
                     f"BLEU {expected[3][0]:.2f} chrF {expected[3][1]:.2f}"]
    assert evaluate("--beam", "1")[0] == f"{len(pairs)} valid sentences, greedy"  # a flag wins
    assert evaluate("--length-penalty", "2")[0] == f"{len(pairs)} valid sentences, beam 3, length penalty 2"
    again = str(tmp_path / "again.pth")
    run_translation.main(run_translation.parse_args(["--checkpoint", exported, "--export", again]))
    assert Translator.load(again).decoding == {"beam": 3, "length_penalty": 0.5}  # kept when none is given


@pytest.mark.parametrize("decoding", [{"beam": 0}, {"beam": 2.5}, {"length_penalty": float("nan")},
                                      {"length_penalty": "1"}])
def test_a_damaged_stored_decoding_is_a_clear_error(setting, tmp_path, decoding):
    checkpoint = setting[2].to_checkpoint()
    checkpoint["info"] = {"decoding": decoding}
    path = tmp_path / "damaged.pth"
    torch.save(checkpoint, path)
    with pytest.raises(RuntimeError, match="damaged translator checkpoint: its stored decoding"):
        Translator.load(str(path))


def test_export_never_overwrites_without_force(setting, tmp_path, capsys):
    exported = tmp_path / "exported.pth"
    exported.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists: add --force"):
        run(setting, "--export", str(exported))
    assert exported.read_bytes() == b"keep me"
    run(setting, "--export", str(exported), "--force")
    assert Translator.load(str(exported)).model.config() == setting[2].model.config()


# ---- --curves --------------------------------------------------------------------------------------------------------


def test_curves_draws_a_runs_log(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    records = [{"step": 250 * i, "minutes": 4.0 * i, "train_loss": 6.0 - i, "valid_loss": 5.0 - i / 2,
                "valid_bleu": 2.0 * i, "valid_chrf": 10.0 + 3 * i} for i in range(1, 5)]
    (run_dir / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    run_translation.main(run_translation.parse_args(["--curves", "--out-dir", str(run_dir), "--figures-dir",
                                                     str(tmp_path), "--no-show"]))
    assert "4 validations" in capsys.readouterr().out
    assert (tmp_path / "translation_training.png").stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="No training log"):
        run_translation.main(run_translation.parse_args(["--curves", "--out-dir", str(tmp_path / "none")]))


def test_runs_appended_to_one_log_are_drawn_end_to_end():
    from lib.training.log import run_minutes
    first = [{"step": 250, "minutes": 5.0}, {"step": 500, "minutes": 10.0}]
    resumed = [{"step": 750, "minutes": 14.0}]  # --resume keeps counting steps and minutes
    second = [{"step": 250, "minutes": 4.0}, {"step": 500, "minutes": 9.0}]  # --init-from starts again at step 0
    minutes, starts = run_minutes(first + resumed + second)
    assert minutes == [5.0, 10.0, 14.0, 18.0, 23.0] and starts == [14.0]
    assert run_minutes([]) == ([], [])


def test_missing_checkpoint_says_what_to_do(tmp_path):
    args = run_translation.parse_args(["--test", "--checkpoint", str(tmp_path / "none.pth")])
    with pytest.raises(FileNotFoundError, match="run_translation.py --train"):
        run_translation.main(args)


# ---- --train: the settings it hands to the training loop, and how it ends --------------------------------------------

def capture_training(monkeypatch, tmp_path):
    """Run --train with lib.training.loop.train replaced: returns the dict that receives its arguments."""
    calls = {}

    def fake_train(config, resume=False, progress=True, overrides=None, force=False):
        calls.update(config=config, resume=resume, overrides=overrides)
        return []
    monkeypatch.setattr(lib.training.loop, "train", fake_train)
    monkeypatch.setattr(lib.training.loop, "check_resumable", lambda out_dir: None)  # no run to resume is needed
    return calls


def test_training_overrides_are_the_flags_given_as_argparse_read_them(monkeypatch, tmp_path):
    """Abbreviations count, --lr-schedule is not --lr, and main(parse_args([...])) from code sees the same flags as
    the command line."""
    calls = capture_training(monkeypatch, tmp_path)
    out_dir = str(tmp_path / "run")
    flags = ["--train", "--resume", "--out-dir", out_dir, "--max-step", "1720", "--lr-schedule", "linear",
             "--device", "cpu", "--no-amp"]
    run_translation.main(run_translation.parse_args(flags))
    assert calls["resume"] and calls["overrides"] == {"max_steps": 1720, "lr_schedule": "linear", "out_dir": out_dir,
                                                      "device": "cpu", "amp": False, "compile": False}
    defaults = lib.training.config.TrainConfig()
    assert calls["config"] == dataclasses.replace(defaults, max_steps=1720, lr_schedule="linear", out_dir=out_dir)
    from_code = dict(calls)
    monkeypatch.setattr(sys, "argv", ["run_translation.py", *flags])
    run_translation.main(run_translation.parse_args())
    assert calls == from_code
    run_translation.main(run_translation.parse_args(["--train", "--device", "cpu", "--out-dir", out_dir]))
    assert set(calls["overrides"]) == {"out_dir", "device", "amp", "compile"} and not calls["resume"]


def test_old_spellings_of_unset_reach_the_config_as_none(monkeypatch, tmp_path):
    calls = capture_training(monkeypatch, tmp_path)
    run_translation.main(run_translation.parse_args([
        "--train", "--out-dir", str(tmp_path), "--device", "cpu", "--ffn-dim", "0", "--attention-dropout", "-1",
        "--max-minutes", "0", "--joint-vocab-size", "0", "--extra-per-epoch", "0", "--extra-sources", ""]))
    config = calls["config"]
    assert (config.ffn_dim, config.attention_dropout, config.max_minutes, config.joint_vocab_size,
            config.extra_per_epoch, config.extra_sources) == (None,) * 6
    assert {name: calls["overrides"][name] for name in ("ffn_dim", "max_minutes")} == {"ffn_dim": None,
                                                                                       "max_minutes": None}


CPU_FLAGS = [("fpu avx2 avx512f", False), ("fpu avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True)]


@pytest.mark.parametrize("cpu_flags, amp", CPU_FLAGS)
def test_amp_unset_is_bfloat16_where_the_cpu_computes_it_natively(monkeypatch, tmp_path, cpu_flags, amp):
    calls = capture_training(monkeypatch, tmp_path)
    monkeypatch.setattr(lib.training.config, "read_cpuinfo", lambda: f"processor\t: 0\nflags\t\t: {cpu_flags}\n")
    run_translation.main(run_translation.parse_args(["--train", "--out-dir", str(tmp_path), "--device", "cpu"]))
    assert calls["config"].amp is amp and calls["overrides"]["amp"] is amp
    for flag, given in (("--amp", True), ("--no-amp", False)):  # given: as given, whatever the processor
        run_translation.main(run_translation.parse_args(["--train", "--out-dir", str(tmp_path), "--device", "cpu",
                                                         flag]))
        assert calls["config"].amp is given


@pytest.mark.parametrize("sizes", [["--de-vocab-size", "500"], ["--en-vocab-size", "500", "--de-vocab-size", "400"]])
def test_a_joint_vocabulary_beside_per_language_sizes_is_refused_before_training(monkeypatch, tmp_path, sizes):
    calls = capture_training(monkeypatch, tmp_path)
    flags = ["--train", "--device", "cpu", "--out-dir", str(tmp_path), "--joint-vocab-size", "600"]
    with pytest.raises(ValueError, match="give either --joint-vocab-size or the per-language sizes"):
        run_translation.main(run_translation.parse_args(flags + sizes))
    assert not calls
    run_translation.main(run_translation.parse_args(flags + ["--de-vocab-size", "500", "--joint-vocab-size", "0"]))
    assert calls["config"].de_vocab_size == 500 and calls["config"].joint_vocab_size is None


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["Ctrl-C", "SIGTERM", "SIGHUP"])
def test_an_interrupted_training_prints_how_to_resume_and_exits_128_plus_the_signal(monkeypatch, tmp_path, capsys,
                                                                                    signum, code):
    def interrupted_train(config, resume=False, progress=True, overrides=None, force=False):
        raise lib.training.loop.TrainingInterrupted(7, os.path.join(config.out_dir, "last.pth"), config.out_dir,
                                                    signum)
    monkeypatch.setattr(lib.training.loop, "train", interrupted_train)
    args = run_translation.parse_args(["--train", "--device", "cpu", "--out-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit:
        run_main(run_translation.main, args)
    assert exit.value.code == code
    by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    assert capsys.readouterr().err == (f"Interrupted{by} at step 7: {tmp_path}/last.pth saved; continue with: python "
                                       f"run_translation.py --train --resume --out-dir {tmp_path}\n")


# ---- bad input: one line that says what to do ------------------------------------------------------------------------

def expand(flags, files):
    """Replace {name} in the flags by the path of that file."""
    return [flag.format(**files) for flag in flags]


USE = ["--checkpoint", "{translator}", "--corpus", "{corpus}", "--corpus-format", "tsv", "--no-show"]
MAIN_CASES = [
    (["--test", "--layer", "9", "--plot", "--figures-dir", "{folder}"] + USE, "--layer 9 is out of range: this "
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
    (["--test", "--checkpoint", "{folder}"], "--checkpoint .* is a folder; give a file"),
    (["--test", "--checkpoint", "{folder}/none.pth"], "--checkpoint .*none.pth does not exist"),
    (["--export", "{folder}/averaged.pth", "--average", "{translator}", "{random}"], "not a translator checkpoint"),
    (["--export", "{existing}", "--checkpoint", "{translator}"], "existing.pth already exists: add --force"),
    (["--export", "{folder}", "--checkpoint", "{translator}", "--force"], "is a folder; give a file name"),
    (["--test", "--plot", "--figures-dir", "{file}"] + USE, "--figures-dir .* is a file; give a folder"),
    (["--curves", "--out-dir", "{folder}/none"], "No training log at"),
    (["--curves", "--out-dir", "{log}", "--figures-dir", "{folder}"],
     "line 1 is not a validation record of this library"),
    (["--train", "--out-dir", "{file}", "--device", "cpu"], "--out-dir .* is a file; give a folder"),
    (["--train", "--num-heads", "3", "--out-dir", "{folder}/run", "--device", "cpu"], "--num-heads"),
]


@pytest.mark.parametrize("flags, message", MAIN_CASES, ids=[" ".join(flags[:3]) for flags, _ in MAIN_CASES])
def test_main_refuses_bad_input_in_one_line(flags, message, bad_input_files, capsys, monkeypatch):
    def never(*args, **options):
        raise AssertionError("training started despite bad input")
    monkeypatch.setattr(lib.training.loop, "train", never)
    args = run_translation.parse_args(expand(flags, bad_input_files))
    with pytest.raises(SystemExit) as exit:
        run_main(run_translation.main, args)
    text = exit.value.code
    assert isinstance(text, str) and text.startswith("error: ") and "\n" not in text, text
    assert re.search(message, text), text
    assert "weights_only" not in text and "Traceback" not in capsys.readouterr().err
    assert os.path.exists(bad_input_files["existing"]) and open(bad_input_files["existing"], "rb").read() == b"keep"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused(bad_input_files):
    args = run_translation.parse_args(expand(["--test", "--device", "cuda"] + USE, bad_input_files))
    with pytest.raises(SystemExit, match="no CUDA GPU is available here"):
        run_main(run_translation.main, args)


# ---- the translator itself, as the commands call it ------------------------------------------------------------------

def test_the_translator_refuses_bad_arguments_clearly(bad_input_files):
    translator = Translator.load(bad_input_files["translator"])
    for call, message in [(lambda: translator.translate(["Das Haus ist rot."], batch_size=0), "batch_size"),
                          (lambda: translator.translate(["Das Haus ist rot."], beam=0), "beam"),
                          (lambda: translator.attention("   "), "the sentence is empty"),
                          (lambda: translator.attention("Das Haus ist rot.", layer=1), "has 1 decoder layer "),
                          (lambda: translator.evaluate([]), "nothing to evaluate")]:
        with pytest.raises(ValueError, match=message):
            call()


# ---- the rows of a table: a result, or one line that says what to do; nothing overwritten ----------------------------

# A tiny training run of the corpus of tests/helpers.py (2 steps, validated at step 2).
TINY = ["--corpus", "{corpus}", "--corpus-format", "tsv", "--de-vocab-size", "60", "--en-vocab-size", "60",
        "--max-len", "16", "--embed-dim", "16", "--enc-layers", "1", "--dec-layers", "1", "--num-heads", "2",
        "--batch-tokens", "270", "--warmup-steps", "2", "--phrases-per-epoch", "0", "--max-steps", "2",
        "--eval-every", "2", "--eval-sentences", "2", "--device", "cpu", "--no-progress"]
OLD_RUN = {"last.pth": b"old state", "best.pth": b"old best", "log.jsonl": b'{"step": 99}\n',
           "snapshots/step0000099.pth": b"old snapshot"}


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """{corpus, translator}: the corpus of tests/helpers.py and a random translator for it."""
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
    Row("--length-penalty 10 is in range and finite", ["--test", "--beam", "4", "--length-penalty", "10",
                                                       "--checkpoint", "{translator}", "--corpus", "{corpus}",
                                                       "--corpus-format", "tsv"], 0, "Translation: "),
    Row("a stored decoding out of range", ["--test", "--checkpoint", "{tmp}/x.pth"], 1,
        r"x.pth is a damaged translator checkpoint: its stored decoding length_penalty must be at least -10 and at "
        "most 10, got 1000; export it again",
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
    Row("an empty --input file", ["--input", "{tmp}/empty.txt", "--checkpoint", "{translator}"], 1,
        r"--input .*empty.txt holds no lines: nothing to translate; give one German sentence per line",
        lambda folder: (folder / "empty.txt").write_bytes(b"")),
    Row("an empty standard input", ["--input", "-", "--checkpoint", "{translator}"], 1,
        r"--input - holds no lines: nothing to translate"),
    Row("--compare with the checkpoint itself", ["--eval", "--checkpoint", "{translator}", "--compare",
                                                 "{translator}", "--corpus", "{corpus}", "--corpus-format", "tsv"], 1,
        r"--compare .*translator.pth is the --checkpoint itself, so the comparison would show no difference"),
    # every flag that reads text reads it through lib.files.open_text: UTF-8, plain or gzip whatever the name
    Row("a truncated gzip --corpus", ["--eval", "--checkpoint", "{translator}", "--corpus", "{tmp}/cut.tsv.gz",
                                      "--corpus-format", "tsv"], 1,
        r"--corpus \S*cut.tsv.gz is a damaged gzip file: it ends before its compressed data does \(after line \d+\); "
        r"it must be UTF-8 text, plain or gzip: copy or compress it again",
        lambda folder: (folder / "cut.tsv.gz").write_bytes(gzip.compress(b"Hallo\tHello\n" * 500)[:30])),
    Row("a gzip --corpus named .tsv", ["--eval", "--split", "all", "--checkpoint", "{translator}", "--corpus",
                                       "{tmp}/packed.tsv", "--corpus-format", "tsv"], 0, r"2 pairs of \S*packed.tsv",
        lambda folder: (folder / "packed.tsv").write_bytes(gzip.compress(
            "Der Hund schläft.\tThe dog sleeps.\nDie Katze läuft.\tThe cat runs.\n".encode("utf-8")))),
    Row("a UTF-16 --corpus", ["--test", "--checkpoint", "{translator}", "--corpus", "{tmp}/wide.tsv",
                              "--corpus-format", "tsv"], 1,
        r"--corpus \S*wide.tsv is UTF-16 text; it must be UTF-8 text, plain or gzip: convert it, e.g. 'iconv -f "
        r"utf-16 -t utf-8", lambda folder: (folder / "wide.tsv").write_bytes("Hund\tdog\n".encode("utf-16"))),
    Row("a gzip --extra-corpus of Latin-1 text", ["--train", *TINY, "--out-dir", "{tmp}/run", "--extra-corpus",
                                                  "{tmp}/extra.tsv"], 1,
        r"--extra-corpus \S*extra.tsv is not UTF-8 text: line 2 has the byte 0xfc at character 3; it must be UTF-8 "
        r"text, plain or gzip", lambda folder: (folder / "extra.tsv").write_bytes(gzip.compress(
            "Hund\tdog\tgames\nGrüße\tgreetings\tgames\n".encode("latin-1")))),
    Row("a truncated gzip --input", ["--input", "{tmp}/cut.txt", "--checkpoint", "{translator}"], 1,
        r"--input \S*cut.txt is a damaged gzip file: it ends before its compressed data does \(after line \d+\); it "
        r"must be UTF-8 text \(plain or gzip\), one German sentence a line",
        lambda folder: (folder / "cut.txt").write_bytes(gzip.compress(b"Der Hund.\n" * 500)[:30])),
    Row("--input - of Latin-1 text", ["--input", "-", "--checkpoint", "{translator}"], 1,
        r"--input -: standard input is not UTF-8 text: line 1 has the byte 0xfc at character 3; it must be UTF-8 text",
        patch=lambda monkeypatch: monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
            "Grüße.\n".encode("latin-1"))))),
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
    Row("export over an existing file", ["--export", "{tmp}/run/last.pth", "--checkpoint", "{translator}"], 1,
        "already exists: add --force", old_run, old_run_kept),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_each_row_ends_in_a_result_or_one_line_that_says_what_to_do(row, run_files, tmp_path, capsys, single_process,
                                                                    monkeypatch):
    if row.setup:
        row.setup(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))  # never the terminal's
    if row.patch:
        row.patch(monkeypatch)
    flags = [flag.format(tmp=tmp_path, **run_files) for flag in row.flags]
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


# ---- rows that need a second process or a failure in the middle of a run ---------------------------------------------

def tiny_flags(out_dir, *more):
    return ["--train", *[flag.format(**FILES) for flag in TINY], "--out-dir", str(out_dir), *more]


def catches(pid, signum):
    """Whether process ``pid`` has a handler of its own for ``signum`` (its SigCgt mask in /proc, Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        mask = next(line.split()[1] for line in status if line.startswith("SigCgt:"))
    return bool(int(mask, 16) >> (signum - 1) & 1)


def wait_until(condition, seconds):
    """Return once ``condition()`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not the case after {seconds} s"
        time.sleep(0.05)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads a process's signal handlers in /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_save_last_pth_and_say_how_to_resume_and_a_second_run_is_refused_meanwhile(
        signum, run_files, tmp_path, capsys, single_process):
    out_dir = tmp_path / "run"
    flags = tiny_flags(out_dir, "--max-steps", "100000", "--eval-every", "100000")
    process = subprocess.Popen([sys.executable, os.path.join(REPOSITORY, "run_translation.py"), *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"))
    try:
        assert process.stdout.readline().startswith("Training on cpu")  # printed just before the loop starts
        time.sleep(2)  # in the loop, where the signal saves last.pth (before it, the script ends without training)
        assert catches(process.pid, signum)
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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_while_translating_says_how_many_lines_were_written(signum, run_files, tmp_path):
    fifo = tmp_path / "lines"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, os.path.join(REPOSITORY, "run_translation.py"), "--input", str(fifo),
                                "--checkpoint", run_files["translator"], "--batch-size", "1", "--threads", "1",
                                "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"))
    try:
        with open(fifo, "w", encoding="utf-8") as writer:  # kept open: the script waits for more lines
            writer.write("Der Hund schläft.\nDie Katze läuft.\n")
            writer.flush()
            translated = [process.stdout.readline(), process.stdout.readline()]
            process.send_signal(signum)
            out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum and all(line.endswith("\n") for line in translated) and out == ""
    how = "interrupted" if signum == signal.SIGINT else "stopped by SIGTERM"
    assert err == f"{how}: the 2 lines translated so far were written\n"


@pytest.mark.skipif(os.name == "nt", reason="select on pipes is POSIX")
@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_line_from_a_pipe_is_translated_before_the_next_one_is_written(threads, run_files):
    """A program that writes a line into the pipe and waits for its translation gets it (default --batch-size)."""
    import select
    process = subprocess.Popen([sys.executable, os.path.join(REPOSITORY, "run_translation.py"), "--input", "-",
                                "--checkpoint", run_files["translator"], "--threads", threads, "--no-progress"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        answers = []
        for line in ("Der Hund schläft.\n", "Die Katze läuft.\n"):
            process.stdin.write(line)
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 60)
            answers.append(process.stdout.readline() if ready else None)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert None not in answers and all(answer.endswith("\n") for answer in answers), answers
    assert process.returncode == 0 and out == "" and err == ""


# (case, flags, the function during which the signal comes, the signal, the line the script ends with)
STOPS = [
    ("SIGTERM while --eval scores", ["--eval", "--corpus", "{corpus}", "--corpus-format", "tsv"],
     "lib.translation.translator.Translator.evaluate", signal.SIGTERM, "stopped by SIGTERM: nothing was written"),
    ("Ctrl-C in the bootstrap of --eval --compare", ["--eval", "--corpus", "{corpus}", "--corpus-format", "tsv",
                                                     "--compare", "{tmp}/baseline.pth"],
     "lib.translation.significance.paired_bootstrap", signal.SIGINT,
     "interrupted: the baseline's score was written, not the translator's"),
    ("SIGTERM while the --html page is made", ["--text", "Der Hund schläft.", "--html", "{tmp}/page.html"],
     "lib.explorer.page.translation_attention", signal.SIGTERM,
     "stopped by SIGTERM: nothing was written to --html {tmp}/page.html"),
    ("Ctrl-C before the first --input line is translated", ["--input", "{tmp}/lines.txt"],
     "lib.translation.translator.Translator.translate", signal.SIGINT, "interrupted: nothing was written"),
]


@pytest.mark.parametrize("case, flags, target, signum, last", STOPS, ids=[row[0] for row in STOPS])
def test_a_stop_ends_in_one_line_saying_what_was_kept_and_leaves_no_partial_file(
        case, flags, target, signum, last, run_files, tmp_path, capsys, monkeypatch):
    import shutil
    shutil.copy(run_files["translator"], tmp_path / "baseline.pth")
    (tmp_path / "lines.txt").write_text("Der Hund schläft.\n", encoding="utf-8")
    monkeypatch.setattr(target, stop_by(signum))
    flags = [flag.format(tmp=tmp_path, **run_files) for flag in ["--checkpoint", "{translator}", *flags]]
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main, flags, capsys)
    assert code == 128 + signum and printed.strip().splitlines()[-1] == last.format(tmp=tmp_path), printed
    assert "Traceback" not in printed
    assert sorted(os.listdir(tmp_path)) == ["baseline.pth", "lines.txt"]  # no page, no temporary file


def test_an_out_dir_that_cannot_be_written_mid_run_names_it_and_the_step_last_pth_keeps(run_files, tmp_path, capsys,
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
def test_the_log_agrees_with_last_pth_after_a_kill_between_their_writes(log_damage, run_files, tmp_path, capsys,
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


def test_a_run_saved_before_none_meant_unset_resumes_with_none(run_files, tmp_path, capsys, single_process):
    """A last.pth of an older version stores 0, -1.0 and '' for the settings left unset: --resume reads them as None
    and saves them so."""
    out_dir = tmp_path / "run"
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main, tiny_flags(out_dir), capsys)
    assert code == 0, printed
    state = torch.load(out_dir / "last.pth", weights_only=True)
    old = dict(ffn_dim=0, joint_vocab_size=0, attention_dropout=-1.0, max_minutes=0.0, extra_per_epoch=0,
               extra_sources="")
    state["config"].update(old)
    torch.save(state, out_dir / "last.pth")
    code, printed = cli_outcome(run_translation.parse_args, run_translation.main,
                                tiny_flags(out_dir, "--resume", "--max-steps", "4"), capsys)
    assert code == 0, printed
    saved = torch.load(out_dir / "last.pth", weights_only=True)
    assert saved["step"] == 4 and {name: saved["config"][name] for name in old} == dict.fromkeys(old)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_inside_a_step_ends_the_run_after_it_and_restores_the_handler(signum, tmp_path, single_process):
    """In-process: the step the signal arrives in completes, last.pth of that step is saved, the exception names the
    signal, and the signal's handler is the default again afterwards."""
    from lib.training.loop import TrainingInterrupted
    from tests.helpers import tiny_config, train_recording
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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
