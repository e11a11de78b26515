"""tools/sweep_decoding.py: each cell of its table is Translator.evaluate's score with that beam and length penalty on
the valid split, and the best setting printed is the cell with the highest BLEU (then chrF)."""
import importlib.util
import os

import pytest

from lib.translation.corpus import read_tsv, split_corpus
from tests.conftest import corpus_and_translator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
