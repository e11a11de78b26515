"""Tests of lib/translation.py with a tiny random model and tiny SentencePiece vocabularies trained here; and the
shipped checkpoint, when present."""
import os
import sys
import warnings

import pytest
import torch

from lib.corpus import Pair
from lib.tokenizer import PAD, Vocabulary
from lib.transformer import TransformerModel
from lib.translation import SHIPPED_CHECKPOINT, Translator

GERMAN = ["Ich habe morgen keine Zeit.", "Das Wetter ist heute schön.", "Wir gehen nach Hause.",
          "Der Hund schläft im Garten.", "Kannst du mir helfen?", "Sie liest ein Buch.", "Das Essen war sehr gut.",
          "Er kommt morgen zurück.", "Wo ist der Bahnhof?", "Ich trinke gerne Kaffee.", "Die Kinder spielen draußen.",
          "Mein Bruder wohnt in Berlin.", "Es regnet seit gestern.", "Wann fährt der nächste Zug?",
          "Ich verstehe das nicht.", "Bitte schließ die Tür.", "Das Auto ist kaputt.", "Wir haben keine Milch mehr.",
          "Sie arbeitet in einer Bank.", "Heute ist Montag.", "Ich bin müde.", "Das Konzert beginnt um acht.",
          "Er hat seinen Schlüssel verloren.", "Können wir morgen reden?"]
ENGLISH = ["I have no time tomorrow.", "The weather is nice today.", "We are going home.",
           "The dog is sleeping in the garden.", "Can you help me?", "She is reading a book.",
           "The food was very good.", "He is coming back tomorrow.", "Where is the station?", "I like drinking coffee.",
           "The children are playing outside.", "My brother lives in Berlin.", "It has been raining since yesterday.",
           "When does the next train leave?", "I don't understand that.", "Please close the door.",
           "The car is broken.", "We have no milk left.", "She works in a bank.", "Today is Monday.", "I am tired.",
           "The concert starts at eight.", "He has lost his key.", "Can we talk tomorrow?"]
MAX_LEN = 32


@pytest.fixture(scope="module")
def vocabularies():
    return Vocabulary.train(GERMAN * 2, 80), Vocabulary.train(ENGLISH * 2, 80)


@pytest.fixture
def translator(vocabularies):
    """A random model whose weights are exactly representable in float16 (so a half-precision save is lossless)."""
    de_vocab, en_vocab = vocabularies
    torch.manual_seed(0)
    model = TransformerModel(len(en_vocab), len(de_vocab), max_len=MAX_LEN, embed_dim=16, enc_layers=1,
                             dec_layers=2, num_heads=2)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.normal_(0.0, 0.3)
            parameter.copy_(parameter.half().float())
        model.decoder_final_dense.bias[PAD] = -50.0  # a trained model never predicts padding
    return Translator(model.eval(), de_vocab, en_vocab, {"note": "random"})


def test_vocabularies_keep_case_and_punctuation(vocabularies):
    de_vocab, en_vocab = vocabularies
    assert 40 <= len(de_vocab) <= 80 and 40 <= len(en_vocab) <= 80
    assert en_vocab.decode(en_vocab.encode(ENGLISH)) == ENGLISH
    assert Vocabulary.from_tensor(de_vocab.to_tensor()).encode(GERMAN) == de_vocab.encode(GERMAN)


def test_translations_are_text_and_vary(translator):
    outputs = translator.translate(GERMAN)
    assert len(outputs) == len(GERMAN) and all(isinstance(text, str) for text in outputs)
    assert len(set(outputs)) > 3 and sum(map(len, outputs)) > 0


@pytest.mark.parametrize("half", [False, True])
def test_save_and_load_round_trip(translator, tmp_path, half):
    path = str(tmp_path / "translator.pth")
    translator.save(path, half=half)
    loaded = Translator.load(path)
    assert loaded.model.config() == translator.model.config() and loaded.info == {"note": "random"}
    for name, value in translator.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value), name
    assert not loaded.model.training
    assert loaded.translate(GERMAN) == translator.translate(GERMAN)
    assert loaded.translate(GERMAN, beam=3) == translator.translate(GERMAN, beam=3)
    stored = torch.load(path, weights_only=True)["model"]
    assert {value.dtype for value in stored.values()} == {torch.float16 if half else torch.float32}


def test_empty_lines_and_order(translator):
    texts = ["", GERMAN[0], "   ", GERMAN[5], GERMAN[1], ""]
    outputs = translator.translate(texts, batch_size=2)
    assert outputs[0] == outputs[2] == outputs[5] == ""
    assert outputs == ["" if not text.strip() else translator.translate([text])[0] for text in texts]
    assert translator.translate([]) == []


def test_batching_does_not_change_translations(translator):
    alone = [translator.translate([text])[0] for text in GERMAN[:8]]
    assert translator.translate(GERMAN[:8], batch_size=3) == alone
    assert translator.translate(GERMAN[:8], beam=2, batch_size=8) == [translator.translate([text], beam=2)[0]
                                                                      for text in GERMAN[:8]]


def test_an_over_long_line_warns_and_is_cut(translator):
    long_line = " ".join(GERMAN[:4])
    assert len(translator.de_vocab.encode([long_line])[0]) > MAX_LEN
    with pytest.warns(UserWarning, match="cut"):
        source = translator.source_ids([GERMAN[1], long_line])
    assert source.shape == (2, MAX_LEN)
    assert source[1].tolist() == translator.de_vocab.encode([long_line])[0][:MAX_LEN]
    with pytest.warns(UserWarning, match="input line 2 has"):
        outputs = translator.translate([GERMAN[1], long_line])
    assert isinstance(outputs[1], str)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translator.translate(GERMAN[:3])  # short lines: no warning


def test_loading_a_missing_or_corrupt_file_raises_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        Translator.load(str(tmp_path / "missing.pth"))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(RuntimeError, match="corrupt"):
        Translator.load(str(corrupt))
    foreign = str(tmp_path / "foreign.pth")
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(RuntimeError, match="not a translator checkpoint"):
        Translator.load(foreign)


def test_truncated_checkpoint_raises_a_clear_error(translator, tmp_path):
    path = tmp_path / "truncated.pth"
    translator.save(str(path))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(RuntimeError, match="corrupt"):
        Translator.load(str(path))


def test_evaluate_gives_bleu_100_against_its_own_translations(translator):
    hypotheses = translator.translate(GERMAN)
    pairs = [Pair(german, english, True) for german, english in zip(GERMAN, hypotheses)]
    bleu, chrf, returned = translator.evaluate(pairs)
    assert returned == hypotheses
    assert bleu == pytest.approx(100.0) and chrf == pytest.approx(100.0)
    wrong = [Pair(german, english, True) for german, english in zip(GERMAN, ENGLISH)]
    assert translator.evaluate(wrong)[0] < 50.0


def test_attention_of_one_sentence(translator):
    source_pieces, output_pieces, text, weights = translator.attention(GERMAN[0])
    assert source_pieces == translator.de_vocab.pieces(translator.de_vocab.encode([GERMAN[0]])[0])
    assert text == translator.translate([GERMAN[0]])[0]
    assert weights.shape == (2, len(output_pieces), len(source_pieces))
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))


@pytest.mark.skipif(not os.path.isfile(SHIPPED_CHECKPOINT), reason="no shipped checkpoint in data/")
def test_shipped_checkpoint_translates_an_everyday_sentence():
    translator = Translator.load()
    (english,) = translator.translate(["Ich habe morgen keine Zeit."])
    assert english.strip() and any(letter.isalpha() for letter in english)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
