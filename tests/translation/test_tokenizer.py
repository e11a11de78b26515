"""lib/translation/tokenizer.py: a huge text is cut before it is encoded, to what the ids kept from it can cover."""
import warnings

import pytest

from lib.checkpoint import load_checkpoint
from lib.translation.tokenizer import Vocabulary
from lib.translation.translator import SHIPPED_CHECKPOINT, Translator

TOKENS = 48


@pytest.fixture(scope="module")
def vocabulary():
    return Vocabulary.from_tensor(load_checkpoint(SHIPPED_CHECKPOINT)["de_vocab"])


@pytest.mark.parametrize("text, cut", [
    ("Ich habe heute keine Zeit. " * 20_000, True),  # many words
    ("Donaudampfschifffahrt" * 20_000, True),  # one word of 420,000 letters
    ("Haus" + " " * 100_000 + "Auto ist rot.", False),  # a run of whitespace counts as one character
    ("Guten Morgen!", False),
    ("", False),
])
def test_a_clipped_text_encodes_to_the_same_first_ids(vocabulary, text, cut):
    clipped = vocabulary.clip(text, TOKENS)
    assert vocabulary.encode([clipped])[0][:TOKENS] == vocabulary.encode([text])[0][:TOKENS]
    assert (clipped is not text) == cut
    assert not cut or len(clipped) <= vocabulary.longest_text(TOKENS)


def test_longest_text_is_twice_the_longest_piece_per_token(vocabulary):
    longest = max(len(piece) for piece in vocabulary.pieces(range(len(vocabulary))))
    assert vocabulary.longest_text(10) == 2 * longest * 10


def test_a_huge_input_line_is_encoded_from_its_clipped_start(monkeypatch):
    translator = Translator.load(SHIPPED_CHECKPOINT)
    encoded_lengths = []
    encode = translator.de_vocab.encode
    monkeypatch.setattr(translator.de_vocab, "encode",
                        lambda texts: encoded_lengths.extend(map(len, texts)) or encode(texts))
    line = "Ich habe heute keine Zeit. " * 100_000  # 2.7 million characters
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = translator.source_ids([line, "Hallo."])
    limit = translator.model.max_len
    assert max(encoded_lengths) <= translator.de_vocab.longest_text(limit)
    assert source[0].tolist() == encode([line[:5000]])[0][:limit]
    assert [str(warning.message) for warning in caught] == [
        f"input line 1 has more than {len(encode([translator.de_vocab.clip(line, limit)])[0])} tokens; cut to the "
        f"model's max_len {limit}"]
