"""Tests of run_translation.py's commands (--test --line --plot, --input, --eval, --export, --train's settings)
with a tiny random translator and a small made-up tab-separated corpus."""
import dataclasses
import io
import json
import os
import sys

import pytest
import sacrebleu
import torch

import lib.training.config
import lib.training.loop
import run_translation
from lib.translation.corpus import DING_PATH, read_tsv, split_corpus
from lib.translation.significance import paired_bootstrap
from lib.transformer import TransformerModel
from lib.translation.translator import SHIPPED_CHECKPOINT, Translator
from tests.conftest import corpus_and_translator, random_translator

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


def run(setting, *flags):
    corpus, checkpoint, _ = setting
    args = run_translation.parse_args(["--checkpoint", checkpoint, "--corpus", corpus, "--corpus-format", "tsv",
                                       "--no-show", *flags])
    run_translation.main(args)


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


def capture_training(monkeypatch, tmp_path):
    """Run --train with lib.training.loop.train replaced: returns the dict that receives its arguments."""
    calls = {}

    def fake_train(config, resume=False, progress=True, overrides=None, force=False):
        calls.update(config=config, resume=resume, overrides=overrides)
        return []
    monkeypatch.setattr(lib.training.loop, "train", fake_train)
    return calls


def test_training_overrides_are_the_flags_given_as_argparse_read_them(monkeypatch, tmp_path):
    """Abbreviations count, --lr-schedule is not --lr, and main(parse_args([...])) from code sees the same flags as
    the command line."""
    calls = capture_training(monkeypatch, tmp_path)
    out_dir = str(tmp_path / "run")
    flags = ["--train", "--resume", "--out-dir", out_dir, "--max-step", "1720", "--lr-schedule", "linear",
             "--device", "cpu"]
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


@pytest.mark.parametrize("sizes", [["--de-vocab-size", "500"], ["--en-vocab-size", "500", "--de-vocab-size", "400"]])
def test_a_joint_vocabulary_beside_per_language_sizes_is_refused_before_training(monkeypatch, tmp_path, sizes):
    calls = capture_training(monkeypatch, tmp_path)
    flags = ["--train", "--device", "cpu", "--out-dir", str(tmp_path), "--joint-vocab-size", "600"]
    with pytest.raises(ValueError, match="give either --joint-vocab-size or the per-language sizes"):
        run_translation.main(run_translation.parse_args(flags + sizes))
    assert not calls
    run_translation.main(run_translation.parse_args(flags + ["--de-vocab-size", "500", "--joint-vocab-size", "0"]))
    assert calls["config"].de_vocab_size == 500 and calls["config"].joint_vocab_size == 0


def test_training_flags_come_from_the_fields_of_trainconfig(monkeypatch, tmp_path):
    """Help from each field's metadata, --x / --no-x for bool fields, and no flag (and no crash) for a field of a
    type the command line cannot give or whose name another flag already uses."""
    @dataclasses.dataclass
    class Config:
        out_dir: str = "results/translation"
        pre_norm: bool = dataclasses.field(default=False, metadata={"help": "LayerNorm before each block"})
        ffn_dim: int = None
        word_dropout: float = 0.0
        shape: tuple = (1, 2)
        beam: int = 7
        device: str = "cpu"
        amp: bool = False
        compile: bool = False
    monkeypatch.setattr(run_translation, "TrainConfig", Config)
    parser = run_translation.build_parser()
    assert "LayerNorm before each block (default False)" in " ".join(parser.format_help().split())
    args = parser.parse_args(["--train", "--pre-norm", "--ffn-dim", "96", "--word-dropout", "0.25"])
    assert run_translation.given_settings(args) == {"pre_norm": True, "ffn_dim": 96, "word_dropout": 0.25}
    assert run_translation.given_settings(parser.parse_args(["--train", "--no-pre-norm"])) == {"pre_norm": False}
    assert args.beam is None  # the translation flag (default: the stored decoding), not the field (7)
    for bad in (["--shape", "3"], ["--word-dropout", "nan"], ["--ffn-dim", "1.5"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--train", *bad])


def test_ctrl_c_during_training_prints_how_to_resume_and_exits_130(monkeypatch, tmp_path, capsys):
    class Interrupted(KeyboardInterrupt):
        def __str__(self):
            return "Training interrupted at step 7; last.pth is saved: continue with --resume"

    def interrupted_train(config, resume=False, progress=True, overrides=None, force=False):
        raise Interrupted()
    monkeypatch.setattr(lib.training.loop, "train", interrupted_train)
    monkeypatch.setattr(lib.training.loop, "TrainingInterrupted", Interrupted, raising=False)
    args = run_translation.parse_args(["--train", "--device", "cpu", "--out-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit:
        run_translation.run_main(run_translation.main, args)
    assert exit.value.code == 130
    assert capsys.readouterr().err == "Training interrupted at step 7; last.pth is saved: continue with --resume\n"


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
    with pytest.raises(SystemExit):  # refused by the parser: see test_translation_cli.py
        run(setting, "--test", "--line=0")


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


class Recorder(io.StringIO):
    """A stdout that notes what had been written at each flush."""

    def __init__(self):
        super().__init__()
        self.flushed = []

    def flush(self):
        self.flushed.append(self.getvalue().count("\n"))


@pytest.mark.parametrize("threads, written_when_read", [(1, [0, 0, 0, 3, 3, 3, 6]),  # lines 1-3 out before 4 is read
                                                        (2, [0, 0, 0, 0, 0, 0, 3])])  # two batches in flight
def test_input_is_written_batch_by_batch_while_it_is_read(setting, monkeypatch, threads, written_when_read):
    _, _, translator = setting
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
    monkeypatch.setattr(sys, "stdin", Input())
    monkeypatch.setattr(sys, "stdout", stdout)
    run(setting, "--input", "-", "--batch-size", "3", "--threads", str(threads))
    assert stdout.getvalue().split("\n")[:-1] == translator.translate(lines)
    assert stdout.flushed == [3, 6, 7] and reads == written_when_read


def test_a_latin1_input_file_is_refused_before_any_output(setting, capsys, tmp_path):
    source = tmp_path / "latin1.txt"
    source.write_bytes("Ich sehe 3 Hunde.\nIch sehe 4 Vögel.\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8 text: line 2 has the byte 0xf6") as error:
        run(setting, "--input", str(source))
    assert "iconv" in str(error.value) and capsys.readouterr().out == ""


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


@pytest.mark.parametrize("flags", [[], ["--test", "--eval"], ["--test", "--beam", "0"],
                                   ["--test", "--no-repeat-ngram", "-1"], ["--train", "--lr-schedule", "cosine"]])
def test_bad_flag_combinations_exit(flags):
    with pytest.raises(SystemExit):
        run_translation.parse_args(flags)


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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
