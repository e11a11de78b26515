"""tools/sweep_decoding.py: each cell of its table is Translator.evaluate's score with that beam and length penalty on
the valid split, and the best setting printed is the cell with the highest BLEU (then chrF)."""
import gzip
import importlib.util
import os
import re
import signal
import time

import pytest

from lib.translation.corpus import read_tsv, split_corpus
from tests.helpers import cli_outcome, corpus_and_translator, stop_by

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location("sweep_decoding", os.path.join(ROOT, "tools", "sweep_decoding.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_pairs():
    """Made-up sentence pairs: 'Ich sehe 7 Hunde.' -> 'I see 7 dogs.'."""
    animals = [("Hunde", "dogs"), ("Katzen", "cats"), ("Vögel", "birds"), ("Pferde", "horses")]
    return [(f"Ich sehe {number} {german}.", f"I see {number} {english}.")
            for number in range(50) for german, english in animals]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    return corpus_and_translator(tmp_path_factory.mktemp("sweep"), make_pairs(), 80, max_len=20, embed_dim=16,
                                 enc_layers=1, dec_layers=1, num_heads=2)


def test_every_cell_is_the_translators_valid_score_with_that_decoding(setting, capsys):
    corpus, checkpoint, translator = setting
    tool = load_tool()
    args = tool.build_parser().parse_args(["--checkpoint", checkpoint, "--corpus", corpus, "--corpus-format", "tsv",
                                           "--beams", "3", "1", "--length-penalties", "1.5", "0", "--threads", "1"])
    scores = tool.main(args)
    pairs = split_corpus(read_tsv(corpus))["valid"]
    expected = {(1, None): translator.evaluate(pairs)[:2],
                (3, 0.0): translator.evaluate(pairs, beam=3, length_penalty=0.0)[:2],
                (3, 1.5): translator.evaluate(pairs, beam=3, length_penalty=1.5)[:2]}
    assert scores == expected
    assert len(set(scores.values())) == 3, "the settings should score differently"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{len(pairs)} valid sentences, BLEU / chrF"
    assert lines[1:5] == ["| beam | alpha 0 | alpha 1.5 |", "| --- | --- | --- |",
                          f"| 1 | {expected[1, None][0]:.2f} / {expected[1, None][1]:.2f} |",
                          f"| 3 | {expected[3, 0.0][0]:.2f} / {expected[3, 0.0][1]:.2f} | "
                          f"{expected[3, 1.5][0]:.2f} / {expected[3, 1.5][1]:.2f} |"]
    (beam, alpha), (bleu, chrf) = max(expected.items(), key=lambda item: item[1])
    flags = "--beam 1" if alpha is None else f"--beam {beam} --length-penalty {alpha:g}"
    assert lines[5] == f"Best by BLEU: {flags}, BLEU {bleu:.2f} chrF {chrf:.2f}"
    assert lines[6] == ("Store it as the translator's default decoding: python run_translation.py --export PATH "
                        f"--checkpoint {checkpoint} {flags}")


def test_a_missing_checkpoint_is_named_before_any_work(setting, tmp_path):
    corpus, _, _ = setting
    tool = load_tool()
    args = tool.build_parser().parse_args(["--average", str(tmp_path / "a.pth"), "--corpus", corpus])
    with pytest.raises(FileNotFoundError, match="--average .*a.pth does not exist"):
        tool.main(args)


SWEEP_ROWS = [
    ("a length penalty that overflowed", ["--length-penalties", "1", "1000"], 2,
     "--length-penalties: must be at least -10 and at most 10, got 1000"),
    ("a huge negative length penalty", ["--length-penalties=-1e308"], 2, "must be at least -10 and at most 10"),
]


@pytest.mark.parametrize("name, flags, code, message", SWEEP_ROWS, ids=[row[0] for row in SWEEP_ROWS])
def test_sweep_decoding_rows(name, flags, code, message, capsys):
    sweep_decoding = load_tool()
    got, printed = cli_outcome(sweep_decoding.build_parser().parse_args, sweep_decoding.main, flags, capsys)
    last = printed.strip().splitlines()[-1]
    assert got == code and message in last and "Traceback" not in printed, printed


@pytest.mark.parametrize("flag", ["--checkpoint", "--average", "--corpus"])
def test_standard_input_is_refused_in_one_line_where_a_file_is_read_twice(flag, capsys):
    sweep_decoding = load_tool()
    flags = [flag, "-"] + (["--corpus-format", "tsv"] if flag == "--corpus" else [])
    got, printed = cli_outcome(sweep_decoding.build_parser().parse_args, sweep_decoding.main, flags, capsys)
    assert got == 1 and f"{flag} -: this flag needs a regular file" in printed.strip().splitlines()[-1], printed


def test_every_number_flag_has_an_upper_bound():
    parser = load_tool().build_parser()
    flags = [action.option_strings[0] for action in parser._actions
             if getattr(action.type, "__name__", "") in ("integer", "number") and action.option_strings]
    assert flags == ["--beams", "--length-penalties", "--threads"]
    for flag in flags:
        with pytest.raises(SystemExit):
            parser.parse_args([flag, str(10 ** 15)])


# (case, the --corpus file's bytes (None: the setting's corpus), the signal sent while scoring, code, last line)
CORPUS_AND_STOP_ROWS = [
    ("a truncated gzip --corpus", gzip.compress(b"Ich sehe 1 Hund.\tI see 1 dog.\n" * 300)[:40], None, 1,
     r"error: --corpus \S*given.tsv is a damaged gzip file: it ends before its compressed data does \(after line "
     r"\d+\); it must be UTF-8 text, plain or gzip: copy or compress it again"),
    ("a plain --corpus named .gz", "plain", None, 0, r"Store it as the translator's default decoding"),
    ("a Latin-1 --corpus", "Ich sehe 1 Hund.\tI see 1 dog.\nGrüße.\tGreetings.\n".encode("latin-1"), None, 1,
     r"error: --corpus \S*given.tsv is not UTF-8 text: line 2 has the byte 0xfc at character 3; it must be UTF-8 "
     r"text, plain or gzip"),
    ("Ctrl-C while scoring", None, signal.SIGINT, 130, r"^interrupted: nothing was written$"),
    ("SIGTERM while scoring", None, signal.SIGTERM, 143, r"^stopped by SIGTERM: nothing was written$"),
]


@pytest.mark.parametrize("case, content, signum, code, last", CORPUS_AND_STOP_ROWS,
                         ids=[row[0] for row in CORPUS_AND_STOP_ROWS])
def test_the_corpus_is_read_plain_or_gzip_and_a_stop_ends_in_one_line(
        case, content, signum, code, last, setting, tmp_path, capsys, monkeypatch):
    corpus, checkpoint, _ = setting
    sweep_decoding = load_tool()
    if content is not None:
        given = tmp_path / ("given.gz" if content == "plain" else "given.tsv")
        given.write_bytes(open(corpus, "rb").read() if content == "plain" else content)
        corpus = str(given)
    if signum is not None:
        monkeypatch.setattr("lib.translation.translator.Translator.evaluate", stop_by(signum))
    flags = ["--checkpoint", checkpoint, "--corpus", corpus, "--corpus-format", "tsv", "--beams", "1", "--threads",
             "1"]
    got, printed = cli_outcome(sweep_decoding.build_parser().parse_args, sweep_decoding.main, flags, capsys)
    assert got == code and "Traceback" not in printed, printed
    assert re.search(last, printed.strip().splitlines()[-1]), printed
