"""Tests of lib/translation/translator.py with a tiny random model and tiny SentencePiece vocabularies trained here; and
the shipped checkpoint, when present."""
import io
import math
import os
import sys
import traceback
import warnings

import pytest
import sacrebleu
import sentencepiece
import torch

from lib.checkpoint import load_checkpoint
from lib.translation.corpus import Pair
from lib.translation.decoding import beam_search, greedy_decode, naive_greedy_decode
from lib.translation.tokenizer import PAD, START, Vocabulary
from lib.transformer import TransformerModel
from lib.translation import translator as translator_module
from lib.files import REPOSITORY
from lib.translation.translator import SHIPPED_CHECKPOINT, Translator

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
SHIPPED_FIRST_TRANSLATION = "I don't have time tomorrow."  # of "Ich habe morgen keine Zeit."


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


def reference_translation(translator, text):
    """Greedy translation by the plain loop (a full forward pass over the prefix at every step, no cache, no batch),
    decoded by the vocabulary: what Translator.translate must return."""
    ids = naive_greedy_decode(translator.model, translator.source_ids([text], warn=False))[0]
    return translator.en_vocab.decode([ids])[0]


def test_translations_equal_the_plain_decoding_loop_one_sentence_at_a_time(translator):
    outputs = translator.translate(GERMAN, batch_size=5)
    assert outputs == [reference_translation(translator, text) for text in GERMAN]
    assert len(set(outputs)) > len(GERMAN) // 2  # the random model's outputs differ, so the comparison can fail


def test_batches_decoded_on_threads_give_the_same_translations(translator):
    alone = translator.translate(GERMAN, batch_size=4)
    assert translator.translate(GERMAN, batch_size=4, workers=3) == alone
    streamed = translator.translate_stream((text + "\n" for text in GERMAN), batch_size=5, workers=2)
    assert sum(streamed, []) == alone
    with pytest.raises(ValueError, match="workers"):
        translator.translate(GERMAN, workers=0)


def test_streamed_translation_equals_translation_and_reads_as_it_goes(translator):
    read = []

    def lines():
        for number, text in enumerate(GERMAN[:7] + [""], 1):
            read.append(number)
            yield text + "\n"
    chunks = []
    for chunk in translator.translate_stream(lines(), batch_size=3):
        chunks.append(chunk)
        assert len(read) == 3 * len(chunks) or len(read) == 8  # one batch read ahead at most
    assert [len(chunk) for chunk in chunks] == [3, 3, 2]
    assert sum(chunks, []) == translator.translate(GERMAN[:7]) + [""]


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


def test_wide_beams_decode_fewer_sentences_at_once_with_the_same_translations(translator, monkeypatch):
    beam = 40
    expected = [translator.translate([text], beam=beam)[0] for text in GERMAN[:6]]
    monkeypatch.setattr(translator_module, "MAX_BEAM_ROWS", 2 * beam)
    rows = []
    original = translator_module.beam_search

    def counting(model, source, beam_size, **options):
        rows.append(source.shape[0] * beam_size)
        return original(model, source, beam_size, **options)
    monkeypatch.setattr(translator_module, "beam_search", counting)
    assert translator.translate(GERMAN[:6], beam=beam, batch_size=64) == expected
    assert rows == [2 * beam] * 3  # six sentences, two at a time
    rows.clear()
    translator.translate(GERMAN[:3], beam=3 * beam)  # wider than the cap: one sentence at a time, never none
    assert rows == [3 * beam] * 3


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


def foreign_files(folder):
    """Files that are not translator checkpoints: name -> path."""
    import numpy
    files = {"random bytes": folder / "random.pth", "text": folder / "notes.txt", "empty": folder / "empty.pth",
             "pickled numpy": folder / "numpy.pth", "other tensors": folder / "weights.pth"}
    files["random bytes"].write_bytes(bytes(range(256)) * 8)
    files["text"].write_text("these are notes, not weights\n" * 20)
    files["empty"].write_bytes(b"")
    torch.save({"array": numpy.zeros(3)}, files["pickled numpy"])
    torch.save({"weights": torch.zeros(2)}, files["other tensors"])
    return files


def test_loading_a_missing_or_foreign_file_raises_one_clear_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        Translator.load(str(tmp_path / "missing.pth"))
    with pytest.raises(IsADirectoryError, match="is a folder, not a translator checkpoint"):
        Translator.load(str(tmp_path))
    for name, path in foreign_files(tmp_path).items():
        with pytest.raises(RuntimeError, match="not a translator checkpoint") as error:
            Translator.load(str(path))
        message = str(error.value)
        assert str(path) in message and "\n" not in message, name
        shown = "".join(traceback.format_exception(error.value))  # as a traceback would show it, chain included
        assert "weights_only" not in shown and "arbitrary code" not in shown, name  # torch's advice: never
    with pytest.raises(RuntimeError, match="the file is empty"):
        load_checkpoint(str(tmp_path / "empty.pth"))
    with pytest.raises(RuntimeError, match=r"Python objects \(numpy"):
        load_checkpoint(str(tmp_path / "numpy.pth"))


def test_a_checkpoint_whose_weights_do_not_fit_its_configuration(translator, tmp_path):
    checkpoint = translator.to_checkpoint()
    checkpoint["config"] = dict(checkpoint["config"], embed_dim=8)
    path = tmp_path / "mismatch.pth"
    torch.save(checkpoint, path)
    with pytest.raises(RuntimeError, match="damaged translator checkpoint.*do not fit") as error:
        Translator.load(str(path))
    assert "\n" not in str(error.value)


def test_truncated_checkpoint_raises_a_clear_error(translator, tmp_path):
    path = tmp_path / "truncated.pth"
    translator.save(str(path))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(RuntimeError, match="not a translator checkpoint: it is a damaged or truncated PyTorch file"):
        Translator.load(str(path))


def test_evaluate_of_a_hand_made_example_is_bleu_in_closed_form(translator, monkeypatch):
    """Hypothesis 'the cat sat on the mat' against 'the cat sat on the mat today': every n-gram precision is 1, so
    BLEU is the brevity penalty exp(1 - 7/6); chrF of an identical pair is 100."""
    monkeypatch.setattr(translator, "translate", lambda texts, **options: ["the cat sat on the mat"] * len(texts))
    bleu, _, _ = translator.evaluate([Pair("Die Katze sass auf der Matte.", "the cat sat on the mat today", True)])
    assert bleu == pytest.approx(100 * math.exp(1 - 7 / 6))
    _, chrf, _ = translator.evaluate([Pair("Die Katze sass auf der Matte.", "the cat sat on the mat", True)])
    assert chrf == pytest.approx(100.0)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        translator.evaluate([])


def test_evaluate_scores_its_translations_with_sacrebleu(translator):
    pairs = [Pair(german, english, True) for german, english in zip(GERMAN, ENGLISH)]
    bleu, chrf, hypotheses = translator.evaluate(pairs, batch_size=4)
    assert hypotheses == translator.translate(GERMAN)
    assert bleu == sacrebleu.corpus_bleu(hypotheses, [ENGLISH]).score
    assert chrf == sacrebleu.corpus_chrf(hypotheses, [ENGLISH]).score


def test_evaluate_gives_bleu_100_against_its_own_translations(translator):
    hypotheses = translator.translate(GERMAN)
    pairs = [Pair(german, english, True) for german, english in zip(GERMAN, hypotheses)]
    bleu, chrf, returned = translator.evaluate(pairs)
    assert returned == hypotheses
    assert bleu == pytest.approx(100.0) and chrf == pytest.approx(100.0)
    wrong = [Pair(german, english, True) for german, english in zip(GERMAN, ENGLISH)]
    assert translator.evaluate(wrong)[0] < 50.0


def test_attention_of_the_greedy_translation_equals_the_incremental_decoders(translator):
    """Teacher-forced over the greedy translation, the cross-attention equals what greedy decoding (cached, one
    position per step) recorded, in every layer."""
    source = translator.source_ids([GERMAN[0]])
    for layer in (0, 1, -1):
        source_pieces, output_pieces, text, weights = translator.attention(GERMAN[0], layer=layer)
        (ids,), (expected,) = greedy_decode(translator.model, source, return_attention=True, layer=layer)
        assert text == translator.translate([GERMAN[0]])[0]
        assert source_pieces == translator.de_vocab.pieces(source[0].tolist())
        assert output_pieces[:len(ids)] == translator.en_vocab.pieces(ids)
        torch.testing.assert_close(weights, expected)
    with pytest.raises(ValueError, match="2 decoder layers"):
        translator.attention(GERMAN[0], layer=2)


def test_attention_follows_the_translation_it_returns(translator):
    """With a beam, the weights are those behind the beam's translation (not the greedy one): rows are its pieces
    and END, and each row is what the full forward pass over that translation gives."""
    texts = [text for text in GERMAN if translator.translate([text], beam=3) != translator.translate([text])]
    assert texts, "the random model should translate some sentence differently with a beam"
    text = texts[0]
    _, output_pieces, translation, weights = translator.attention(text, beam=3)
    assert translation == translator.translate([text], beam=3)[0]
    source = translator.source_ids([text])
    ids = beam_search(translator.model, source, 3)[0]
    assert output_pieces == translator.en_vocab.pieces(ids) + ["<END>"]
    _, last_layer = translator.model(source, torch.tensor([[START] + ids]))
    torch.testing.assert_close(weights, last_layer[:, 0])
    forced = translator.attention(text, output_ids=[4, 5, 6])
    assert forced[1] == translator.en_vocab.pieces([4, 5, 6]) + ["<END>"] and forced[3].shape[1] == 4


def test_shipped_checkpoint_is_found_from_the_package():
    assert SHIPPED_CHECKPOINT == os.path.join(REPOSITORY, "data", "translator.pth")
    assert os.path.isfile(os.path.join(REPOSITORY, "lib", "translation", "translator.py"))


@pytest.mark.skipif(not os.path.isfile(SHIPPED_CHECKPOINT), reason="no shipped checkpoint in data/")
def test_shipped_checkpoint_translates_as_the_plain_loop_does():
    translator = Translator.load()
    sentences = ["Ich habe morgen keine Zeit.", "Wo ist der Bahnhof?", "Das Wetter ist heute schön."]
    translations = translator.translate(sentences)
    assert translations == [reference_translation(translator, text) for text in sentences]
    assert translations[0] == SHIPPED_FIRST_TRANSLATION  # recorded from the shipped model


@pytest.mark.skipif(not os.path.isfile(SHIPPED_CHECKPOINT), reason="no shipped checkpoint in data/")
def test_shipped_checkpoint_carries_the_decoding_chosen_on_the_valid_split():
    """Beam 8 with length penalty 1.2 was the best on the valid split (docs/translation-experiments.md)."""
    assert Translator.load().decoding == {"beam": 8, "length_penalty": 1.2}


def test_length_penalty_reaches_beam_search_in_every_entry_point(translator):
    """translate, translate_stream, attention and evaluate rank finished hypotheses with the penalty given: each
    equals beam_search's own output with that penalty, and some sentence changes between penalties 0 and 3."""
    def direct(text, alpha):
        ids = beam_search(translator.model, translator.source_ids([text], warn=False), 4, length_penalty=alpha)
        return translator.en_vocab.decode(ids)[0]
    for alpha in (0.0, 3.0):
        expected = [direct(text, alpha) for text in GERMAN]
        assert translator.translate(GERMAN, beam=4, length_penalty=alpha) == expected
        assert sum(translator.translate_stream(GERMAN, beam=4, batch_size=3, length_penalty=alpha), []) == expected
        assert translator.attention(GERMAN[0], beam=4, length_penalty=alpha)[2] == expected[0]
        pairs = [Pair(german, english, True) for german, english in zip(GERMAN, ENGLISH)]
        assert translator.evaluate(pairs, beam=4, length_penalty=alpha)[2] == expected
    assert translator.translate(GERMAN, beam=4, length_penalty=0.0) != translator.translate(GERMAN, beam=4,
                                                                                            length_penalty=3.0)


# ---- what a checkpoint stores is checked before anything is built from it ----------------------------------------


def with_config(**changes):
    return lambda checkpoint: dict(checkpoint, config=dict(checkpoint["config"], **changes))


def with_decoding(decoding):
    return lambda checkpoint: dict(checkpoint, info={"decoding": decoding})


def with_weights(change):
    """The checkpoint with its weights ``change(weights)``."""
    return lambda checkpoint: dict(checkpoint, model=change(dict(checkpoint["model"])))


def sharing_one_storage(weights):
    """Every tensor a view of one storage, as large as the largest: far fewer numbers than the model has."""
    storage = torch.zeros(max(value.numel() for value in weights.values()))
    return {name: storage[:value.numel()].view(value.shape) for name, value in weights.items()}


def foreign_sentencepiece_model():
    """A SentencePiece model with SentencePiece's own special pieces (<unk>, <s>, </s>), as uint8 tensor."""
    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(GERMAN * 2), model_writer=buffer, vocab_size=60,
                                             minloglevel=2, hard_vocab_limit=False)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


CONFIG_ADVICE = "; it cannot be used: give another translator checkpoint or train one"
# (name, the change to a good checkpoint, the words of the one-line error): each is refused before any model is built
STORED = [
    ("max_len 10**9", with_config(max_len=10 ** 9),
     "is a damaged translator checkpoint: its stored config max_len must be from 1 to 1024, got 1000000000"
     + CONFIG_ADVICE),
    ("max_len 2,000,000", with_config(max_len=2_000_000), "max_len must be from 1 to 1024, got 2000000"),
    ("max_len of 41 digits", with_config(max_len=10 ** 40),
     "max_len must be from 1 to 1024, got a number of about 41 digits"),
    ("max_len 0", with_config(max_len=0), "max_len must be from 1 to 1024, got 0"),
    ("max_len a float", with_config(max_len=32.0), "max_len must be a whole number, got 32.0"),
    ("max_len a string", with_config(max_len="32"), "max_len must be a whole number, got '32'"),
    ("max_len a long string", with_config(max_len="3" * 10_000), "max_len must be a whole number, got '333"),
    ("max_len None", with_config(max_len=None), "max_len must be a whole number, got None"),
    ("max_len True", with_config(max_len=True), "max_len must be a whole number, got True"),
    ("embed_dim", with_config(embed_dim=100_000), "embed_dim must be from 1 to 8192, got 100000"),
    ("enc_layers", with_config(enc_layers=10 ** 6), "enc_layers must be from 0 to 64, got 1000000"),
    ("dec_layers negative", with_config(dec_layers=-1), "dec_layers must be from 0 to 64, got -1"),
    ("num_heads", with_config(num_heads=10_000), "num_heads must be from 1 to 256, got 10000"),
    ("ffn_dim", with_config(ffn_dim=10 ** 7), "ffn_dim must be from 1 to 65536, got 10000000"),
    ("en_vocab_size", with_config(en_vocab_size=10 ** 9), "en_vocab_size must be from 5 to 100000, got 1000000000"),
    ("de_vocab_size negative", with_config(de_vocab_size=-5), "de_vocab_size must be from 5 to 100000, got -5"),
    ("dropout", with_config(dropout=1.5), "dropout must be at least 0 and below 1, got 1.5"),
    ("attention_dropout nan", with_config(attention_dropout=math.nan),
     "attention_dropout must be a finite number, got nan"),
    ("pre_norm a string", with_config(pre_norm="yes"), "pre_norm must be True or False, got 'yes'"),
    ("two values", with_config(max_len=-1, embed_dim=0),
     "its stored config max_len must be from 1 to 1024, got -1; embed_dim must be from 1 to 8192, got 0;"),
    ("an unknown setting", with_config(colour="red"), "its stored config has unknown setting 'colour'"),
    ("a config that is no table", lambda checkpoint: dict(checkpoint, config=[48, 256]),
     "its stored config is [48, 256], not a table of settings" + CONFIG_ADVICE),
    ("info that is no table", lambda checkpoint: dict(checkpoint, info=["x"]), "its stored info is ['x'], not a table"),
    ("beam 20000", with_decoding({"beam": 20000}),
     "is a damaged translator checkpoint: its stored decoding beam must be from 1 to 100, got 20000; export it again "
     "with --beam and --length-penalty from the checkpoint it was exported from"),
    ("beam 0", with_decoding({"beam": 0}), "its stored decoding beam must be from 1 to 100, got 0"),
    ("beam 2.5", with_decoding({"beam": 2.5}), "its stored decoding beam must be a whole number, got 2.5"),
    ("beam True", with_decoding({"beam": True}), "its stored decoding beam must be a whole number, got True"),
    ("length_penalty 1000", with_decoding({"beam": 4, "length_penalty": 1000}),
     "its stored decoding length_penalty must be at least -10 and at most 10, got 1000"),
    ("length_penalty nan", with_decoding({"length_penalty": math.nan}), "length_penalty must be a finite number"),
    ("length_penalty a string", with_decoding({"length_penalty": "1"}), "length_penalty must be a number, got '1'"),
    ("a decoding that is no table", with_decoding("greedy"), "its stored decoding is 'greedy', not a table"),
    ("no vocabulary", lambda checkpoint: {key: value for key, value in checkpoint.items() if key != "de_vocab"},
     "is a damaged translator checkpoint: it has no de_vocab"),
    ("random vocabulary bytes", lambda checkpoint: dict(checkpoint, de_vocab=torch.randint(
        256, (500,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))),
     "is not a translator checkpoint: its vocabulary (de_vocab) is not a SentencePiece model (500 bytes that "
     "SentencePiece cannot read)"),
    ("empty vocabulary bytes", lambda checkpoint: dict(checkpoint, en_vocab=torch.zeros(0, dtype=torch.uint8)),
     "its vocabulary (en_vocab) is not a SentencePiece model (no bytes)"),
    ("a vocabulary of floats", lambda checkpoint: dict(checkpoint, en_vocab=torch.zeros(5)),
     "its vocabulary (en_vocab) is not a SentencePiece model (a torch.float32 tensor of shape (5,), not bytes)"),
    ("a vocabulary that is a string", lambda checkpoint: dict(checkpoint, de_vocab="model"),
     "its vocabulary (de_vocab) is not a SentencePiece model (str, not bytes)"),
    ("another library's vocabulary", lambda checkpoint: dict(checkpoint, de_vocab=foreign_sentencepiece_model()),
     "its vocabulary (de_vocab) is not a SentencePiece model of this library (its first pieces are ['<unk>', '<s>', "
     "'</s>'"),
    ("vocabularies of other sizes", lambda checkpoint: dict(checkpoint, de_vocab=Vocabulary.train(
        GERMAN * 2, 60).to_tensor()), "is a damaged translator checkpoint: its vocabularies have 60 and 80 pieces, its "
        "config de_vocab_size=80 and en_vocab_size=80"),
]
# (name, the change, the words): stored values within the flags' ranges whose weights do not fit; the model is built
# on the meta device only (no memory), never for real
WEIGHTS = [
    ("max_len 1024", with_config(max_len=1024),
     "is a damaged translator checkpoint: its weights do not fit its configuration (enc_pos_enc has the shape "
     f"(1, {MAX_LEN}, 16), the config's model (1, 1024, 16))."),
    ("the most layers and the widest feed-forward the flags allow", with_config(enc_layers=64, dec_layers=64,
                                                                                ffn_dim=65536),
     "its weights do not fit its configuration (it has no enc_increase_hidden.1.weight, "),
    ("num_heads that do not divide embed_dim", with_config(num_heads=3),
     "its weights do not fit its configuration (embed_dim 16 must be divisible by num_heads 3)"),
    ("one storage under every name", with_weights(sharing_one_storage),
     "its weights do not fit its configuration (its tensors hold 1280 numbers between them, the config's model has "
     "13584)"),
    ("a weight missing", with_weights(lambda weights: {name: value for name, value in weights.items()
                                                       if name != "enc_pos_enc"}), "(it has no enc_pos_enc)"),
    ("a weight that is no tensor", with_weights(lambda weights: dict(weights, enc_pos_enc=[0.0] * 512)),
     "(enc_pos_enc is [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ...], not a tensor of numbers)"),
    ("a weight on the meta device", with_weights(lambda weights: dict(weights, enc_pos_enc=torch.zeros(
        1, MAX_LEN, 16, device="meta"))), "(enc_pos_enc is tensor(..., device..., size=(1, 32, 16)), not a tensor"),
]


def test_a_model_built_on_the_meta_device_allocates_and_draws_nothing():
    """What the checks below rely on: every tensor of a TransformerModel (the attention's too) follows the default
    device, so its shapes cost no memory, and torch's random numbers are left as they were."""
    state = torch.get_rng_state()
    with torch.device("meta"):
        model = TransformerModel(100_000, 100_000, max_len=1024, embed_dim=512, enc_layers=2, dec_layers=2,
                                 num_heads=8)  # 0.6 GB as float32
    assert all(value.is_meta for value in model.state_dict().values()) and torch.equal(torch.get_rng_state(), state)


def load_recording_builds(path, monkeypatch):
    """(the error Translator.load(path) raises, the device types of the TransformerModels it built before); a model
    built for real fails the test at once (a max_len of 10**9 would not fit in memory)."""
    built = []

    def recording(**config):
        built.append(torch.empty(0).device.type)  # the default device: "meta" inside ``with torch.device("meta")``
        assert built[-1] == "meta", "a model was built for real from a damaged checkpoint"
        return TransformerModel(**config)
    monkeypatch.setattr(translator_module, "TransformerModel", recording)
    with pytest.raises(RuntimeError) as error:
        Translator.load(path)
    return str(error.value), built


@pytest.mark.parametrize("change, words, builds", [(change, words, []) for _, change, words in STORED]
                         + [(change, words, ["meta"]) for _, change, words in WEIGHTS],
                         ids=[name for name, _, _ in STORED + WEIGHTS])
def test_what_a_checkpoint_stores_is_checked_before_a_model_is_built(translator, tmp_path, monkeypatch, change, words,
                                                                     builds):
    path = str(tmp_path / "damaged.pth")
    torch.save(change(translator.to_checkpoint()), path)
    message, built = load_recording_builds(path, monkeypatch)
    assert words in message and message.startswith(path) and "\n" not in message and len(message) < 500, message
    assert built == builds


def test_a_good_checkpoint_is_built_once_for_its_shapes_and_once_for_real(translator, tmp_path, monkeypatch):
    """The recording of the table above sees a model built for real when nothing is wrong (so it can fail)."""
    path = str(tmp_path / "good.pth")
    translator.save(path)
    built = []
    monkeypatch.setattr(translator_module, "TransformerModel",
                        lambda **config: built.append(torch.empty(0).device.type) or TransformerModel(**config))
    assert Translator.load(path).translate(GERMAN[:2]) == translator.translate(GERMAN[:2])
    assert built == ["meta", "cpu"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
