"""Tests of the attention explorer (lib/explorer/page.py, run_translation.py --text/--html, plot_attention.py
--html): the page's numbers are the model's, rows sum to 1 where they should, the causal mask shows, bad input is
refused before any work. The page's behaviour in a real browser is tested in tests/explorer/test_page_browser.py.
"""
import math
import os
from html.parser import HTMLParser

import pytest
import torch

import plot_attention
import run_translation
from lib.explorer.page import (SCALE, explore, page_data, render_page, translation_attention,
                               translation_page_data, word_numbers, write_page)
from lib.counting import CountingConfig, CountingModel, make_counting_data, save_counting_model
from lib.translation.decoding import beam_search, greedy_decode
from lib.translation.tokenizer import START
from lib.translation.translator import Translator
from tests.helpers import corpus_and_translator, random_translator, run_translation_with as run

ANIMALS = [("Hunde", "dogs"), ("Katzen", "cats"), ("Vögel", "birds"), ("Pferde", "horses"), ("Fische", "fish")]
SENTENCE = "Ich sehe 17 Katzen."
TEXT = "Ich habe heute keine Zeit."


def make_pairs():
    """300 made-up sentence pairs: 'Ich sehe 7 Hunde.' -> 'I see 7 dogs.'."""
    return [(f"Ich sehe {number} {german}.", f"I see {number} {english}.")
            for number in range(60) for german, english in ANIMALS]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """(corpus path, checkpoint path, translator): 2 encoder and 2 decoder layers of 2 heads, max_len 24, that never
    predicts <START> (as a trained one)."""
    torch.set_num_threads(1)
    corpus, checkpoint, translator = corpus_and_translator(tmp_path_factory.mktemp("explorer"), make_pairs(), 90,
                                                           max_len=24, embed_dim=16, enc_layers=2, dec_layers=2,
                                                           num_heads=2)
    with torch.no_grad():
        translator.model.decoder_final_dense.bias[START] = -50.0
    translator.save(checkpoint)
    return corpus, checkpoint, translator


@pytest.fixture(scope="module")
def shipped():
    """The shipped translator (3 encoder and 3 decoder layers of 4 heads): real sentences end, as in use."""
    torch.set_num_threads(1)
    return Translator.load()


def page_weights(data, view_id):
    """The page's weights of one view as a float64 tensor (layers, heads, queries, keys)."""
    view = next(view for view in data["views"] if view["id"] == view_id)
    return torch.tensor([entry["weights"] for entry in view["entries"]], dtype=torch.float64) / data["scale"]


def explorer_page(translator, text, beam=1, reference=None):
    """(TranslationAttention, the page's parsed JSON) for ``text``, through the rendered HTML."""
    result = translation_attention(translator, text, beam=beam)
    data = translation_page_data(result, translator, "translator.pth", f"beam {beam}", reference)
    return result, page_data(render_page(data))


def teacher_forced(translator, text, output_ids):
    """(source ids (1, src_len), decoder input (1, tgt_len), cross-attention per layer as TransformerModel.decode
    returns it, each (heads, tgt_len, src_len)), computed here without the explorer."""
    model = translator.model
    source = torch.tensor([translator.de_vocab.encode([text])[0]])
    decoder_input = torch.tensor([([START] + list(output_ids))[:model.max_len + 1]])
    with torch.no_grad():
        memory = model.encode(source)
        _, attentions = model.decode(decoder_input, memory)
    return source, decoder_input, [attention[:, 0] for attention in attentions]


@pytest.mark.parametrize("beam", [1, 4])
def test_page_holds_the_cross_attention_that_the_model_returns_for_the_translation(shipped, beam):
    translator = shipped
    result, data = explorer_page(translator, TEXT, beam=beam)
    output_ids = beam_search(translator.model, translator.source_ids([TEXT]), beam)[0]
    assert result.translation == translator.translate([TEXT], beam=beam)[0]
    ended = len(output_ids) <= translator.model.max_len  # else cut at the decoder's max_len + 1 positions
    assert result.output_pieces == translator.en_vocab.pieces(output_ids) + ["<END>"] * ended
    _, decoder_input, expected = teacher_forced(translator, TEXT, output_ids)
    cross = page_weights(data, "cross")
    assert cross.shape == (3, 4, decoder_input.shape[1], len(result.source_pieces))
    for layer in range(3):
        torch.testing.assert_close(cross[layer], expected[layer].double(), atol=1e-4, rtol=0)


def test_teacher_forced_weights_equal_those_computed_while_decoding_greedily(shipped):
    """The page runs the decoder again over the chosen tokens; the cached step-by-step decoding computed the same
    cross-attention when it chose them."""
    translator = shipped
    _, data = explorer_page(translator, TEXT)
    source = translator.source_ids([TEXT])
    cross = page_weights(data, "cross")
    for layer in range(3):
        _, during = greedy_decode(translator.model, source, return_attention=True, layer=layer)
        torch.testing.assert_close(cross[layer], during[0].double(), atol=1e-4, rtol=0)


def softmax_weights(attention, query_states, key_states, causal=False):
    """Softmax(q k^T / sqrt(d_head)) of a post-norm MultiHeadAttention, per head: (heads, queries, keys)."""
    heads, width = attention.num_heads, attention.embed_dim
    queries = (query_states[0] @ attention.W_query).view(-1, heads, width // heads).transpose(0, 1)
    keys = (key_states[0] @ attention.W_key).view(-1, heads, width // heads).transpose(0, 1)
    scores = queries @ keys.transpose(1, 2) / math.sqrt(width // heads)
    if causal:
        scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1)


def test_self_attention_on_the_page_is_the_softmax_of_queries_and_keys(shipped):
    """Encoder and decoder self-attention (and cross-attention again), recomputed layer by layer from the
    modules' weight matrices."""
    translator = shipped
    result, data = explorer_page(translator, TEXT, beam=3)
    model = translator.model
    output_ids = translator.en_vocab.processor.piece_to_id([piece for piece in result.output_pieces
                                                            if piece != "<END>"])
    source, decoder_input, _ = teacher_forced(translator, TEXT, output_ids)
    encoder, decoder, cross = (page_weights(data, kind) for kind in ("encoder", "decoder", "cross"))
    with torch.no_grad():
        states = model._embed(source, model.enc_input_dense, model.enc_pos_enc, 0, "x1")
        for layer in range(model.enc_layers):
            attention = model.enc_att[layer]
            expected = softmax_weights(attention, states, states)
            torch.testing.assert_close(encoder[layer], expected.double(), atol=1e-4, rtol=0)
            states = model._feed_forward(attention(states, states, states)[0], model.enc_increase_hidden[layer],
                                         model.enc_decrease_hidden[layer], model.enc_layer_norm[layer])
        memory = states
        states = model._embed(decoder_input, model.dec_input_dense, model.dec_pos_enc, 0, "x2")
        for layer in range(model.dec_layers):
            expected = softmax_weights(model.dec_att[layer], states, states, causal=True)
            torch.testing.assert_close(decoder[layer], expected.double(), atol=1e-4, rtol=0)
            states = model.dec_att[layer](states, states, states, mask=True)[0]
            expected = softmax_weights(model.enc_dec_att[layer], states, memory)
            torch.testing.assert_close(cross[layer], expected.double(), atol=1e-4, rtol=0)
            states = model._feed_forward(model.enc_dec_att[layer](states, memory, memory)[0],
                                         model.dec_increase_hidden[layer], model.dec_decrease_hidden[layer],
                                         model.dec_layer_norm[layer])


def test_rows_sum_to_one_and_decoder_self_attention_is_causal(shipped):
    translator = shipped
    _, data = explorer_page(translator, TEXT, beam=3)
    for view in data["views"]:
        weights = page_weights(data, view["id"])
        assert view["normalised"]
        rows = weights.shape[-1]
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1], dtype=torch.float64),
                                   atol=rows * 0.5 / SCALE, rtol=0)
        assert view["causal"] == (view["id"] == "decoder")
    decoder = page_weights(data, "decoder")
    assert decoder.shape[-1] == decoder.shape[-2] > 2
    above = torch.ones(decoder.shape[-2:], dtype=torch.bool).triu(1)
    assert (decoder[..., above] == 0).all() and (decoder[..., 0, 0] == SCALE / SCALE).all()


def test_tokens_on_the_page_are_the_models_pieces_and_words_are_marked(shipped):
    translator = shipped
    result, data = explorer_page(translator, TEXT, reference="I have no time today.")
    views = {view["id"]: view for view in data["views"]}
    assert [view["id"] for view in data["views"]] == ["encoder", "decoder", "cross"]
    cross, decoder = views["cross"]["entries"][0], views["decoder"]["entries"][0]
    assert cross["keys"] == translator.de_vocab.pieces(translator.de_vocab.encode([TEXT])[0])
    assert cross["queries"] == result.output_pieces and result.output_pieces[-1] == "<END>"
    assert decoder["keys"] == ["<START>"] + result.output_pieces[:-1]
    assert cross["key_words"] == word_numbers(cross["keys"])
    facts = dict(data["facts"])
    assert facts["Sentence"] == TEXT and facts["Reference"] == "I have no time today."
    assert facts["Translation"] == result.translation and facts["Decoding"].startswith("beam 1")
    assert "sentence BLEU" in facts["Scores"] and "3 encoder and 3 decoder layers, 4 heads" in facts["Model"]
    assert facts["Model's scores"] == "validation BLEU 9.92, chrF 31.6 (step 10810)"  # as the shipped file records


def test_word_numbers_group_pieces_into_words():
    assert word_numbers(["\u2581Die", "\u2581Haupt", "akt", "eur", "e", "\u2581beim", "."]) == [0, 1, 1, 1, 1, 2, 2]
    assert word_numbers(["<START>", "\u2581The", "\u2581do", "g", "<END>"]) == [0, 1, 2, 2, 3]
    assert word_numbers(["ab", "\u2581c"]) == [0, 1]


def test_page_is_self_contained_and_small_for_a_sentence_of_40_tokens(shipped, tmp_path):
    """The shipped model, 40 German and 40 English tokens (a translation given as output_ids)."""
    translator = shipped
    text = ("Die Hauptakteure beim kolonialen Kräftemessen waren Großbritannien und Frankreich, während die Kinder "
            "im Garten spielten und ihre Eltern in der Küche das Abendessen kochten, ja.")
    assert len(translator.de_vocab.encode([text])[0]) == 40
    output_ids = translator.en_vocab.encode(["The main actors in the colonial struggle were Great Britain and France, "
                                             "while the children played in the garden and their parents cooked "
                                             "dinner in the kitchen at home, yes."])[0][:40]
    assert len(output_ids) == 40
    result = translation_attention(translator, text, output_ids=output_ids)
    path = tmp_path / "page.html"
    size = write_page(translation_page_data(result, translator, "translator.pth", "greedy"), str(path))
    page = path.read_text(encoding="utf-8")
    assert size == os.path.getsize(path) < 1_000_000
    assert len(page_data(page)["views"][2]["entries"][0]["queries"]) == 41
    for remote in ("http://", "https://", "src=", "@import", "//cdn"):
        assert remote not in page.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace's name
    assert page.count("<script") == 2 and "<style>" in page


# ---- run_translation.py --text / --html ------------------------------------------------------------------------


def test_text_prints_the_translation_and_writes_the_page(setting, capsys, tmp_path):
    _, _, translator = setting
    path = tmp_path / "explorer.html"
    run(setting, "--text", SENTENCE, "--beam", "3", "--html", str(path), "--plot", "--figures-dir", str(tmp_path))
    lines = capsys.readouterr().out.splitlines()
    translation = translator.translate([SENTENCE], beam=3)[0]
    assert lines[:2] == [f"German:      {SENTENCE}", f"Translation: {translation}"]
    assert (tmp_path / "translation_attention_text.png").stat().st_size > 5000
    assert lines[-1].startswith("Attention explorer (")
    assert lines[-1].endswith(f"saved to {path}: open it in a web browser")
    facts = dict(page_data(path.read_text(encoding="utf-8"))["facts"])
    assert facts["Translation"] == translation and facts["Decoding"].startswith("beam 3, length penalty 1")
    assert "Reference" not in facts


def test_page_of_averaged_checkpoints_names_them(setting, tmp_path):
    _, checkpoint, _ = setting
    path, copy = tmp_path / "page.html", tmp_path / "copy.pth"
    copy.write_bytes(open(checkpoint, "rb").read())
    run(setting, "--text", SENTENCE, "--average", checkpoint, str(copy), "--html", str(path))
    facts = dict(page_data(path.read_text(encoding="utf-8"))["facts"])
    assert facts["Model"].startswith("average of 2 checkpoints: Transformer")
    assert facts["Model's training"] == "average of 2 checkpoints"  # their steps are not known


def test_test_line_writes_the_page_in_the_figures_folder_by_default(setting, capsys, tmp_path):
    run(setting, "--test", "--line=2", "--html", "--figures-dir", str(tmp_path))
    printed = capsys.readouterr().out.splitlines()
    facts = dict(page_data((tmp_path / "attention_explorer_line2.html").read_text(encoding="utf-8"))["facts"])
    assert printed[2] == f"Reference:   {facts['Reference']}" and printed[3] == f"Translation: {facts['Translation']}"


@pytest.mark.parametrize("flags, error, message", [
    (["--text", "  "], ValueError, "--text is empty: give a German sentence"),
    (["--text", SENTENCE, "--html", "{folder}"], IsADirectoryError, "--html {folder} is a folder"),
    (["--text", SENTENCE, "--html", "{file}/page.html"], NotADirectoryError, "{file} is a file"),
])
def test_bad_requests_are_refused_before_any_work(setting, tmp_path, monkeypatch, flags, error, message):
    def no_work(*args, **kwargs):
        raise AssertionError("the translator was loaded before the request was checked")
    monkeypatch.setattr(Translator, "load", no_work)
    file = tmp_path / "a-file"
    file.write_text("x")
    names = {"folder": str(tmp_path), "file": str(file)}
    with pytest.raises(error, match=message.format(**names).replace(".", r"\.")):
        run(setting, *[flag.format(**names) for flag in flags])


def test_text_longer_than_the_model_takes_names_the_limit(setting):
    long_text = " ".join(f"Ich sehe {number} Katzen." for number in range(20))
    with pytest.raises(ValueError, match=r"--text has \d+ tokens; this model takes at most 24 \(its max_len\)"):
        run(setting, "--text", long_text)


# ---- notebooks: ExplorerView, explore() --------------------------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag of an HTML text, as (tag, {attribute: value}), values unescaped by Python's parser."""

    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attributes):
        self.elements.append((tag, dict(attributes)))


def elements(text):
    parser = _Elements()
    parser.feed(text)
    parser.close()
    return parser.elements


def test_notebook_view_is_one_sandboxed_frame_holding_the_whole_page(setting):
    _, _, translator = setting
    view = explore(translator, SENTENCE, beam=3, reference="I see 17 cats.", name="animals.pth", height=500)
    inline = view._repr_html_()
    assert elements(inline) == [("iframe", {"sandbox": "allow-scripts", "title": f"Attention: {SENTENCE}",
                                            "style": "width: 100%; height: 500px; border: 1px solid #ccc",
                                            "srcdoc": render_page(view.data)})]
    facts = dict(view.data["facts"])
    assert facts["Translation"] == translator.translate([SENTENCE], beam=3)[0]
    assert facts["Reference"] == "I see 17 cats." and facts["Model"].startswith("animals.pth: Transformer")
    assert facts["Decoding"].startswith("beam 3, length penalty 1;")
    expected = translation_attention(translator, SENTENCE, beam=3)
    assert torch.equal(page_weights(view.data, "cross"),
                       page_weights(translation_page_data(expected, translator, "animals.pth", "beam 3"), "cross"))


def test_notebook_view_decodes_as_the_translator_stores_by_default_and_saves_the_page(setting, tmp_path):
    _, checkpoint, _ = setting
    translator = Translator.load(checkpoint)
    translator.info["decoding"] = {"beam": 2, "length_penalty": 0.5}
    view = explore(translator, SENTENCE, no_repeat_ngram=2)
    facts = dict(view.data["facts"])
    assert facts["Decoding"].startswith("beam 2, length penalty 0.5, no repeated 2-grams;")
    assert facts["Translation"] == translator.translate([SENTENCE], beam=2, length_penalty=0.5, no_repeat_ngram=2)[0]
    path = tmp_path / "page.html"
    assert view.save(str(path)) == path.stat().st_size and path.read_text(encoding="utf-8") == view.page()


def test_a_hostile_sentence_stays_text_inside_the_frames_attribute(shipped):
    hostile = 'Er sagte "</script><img src=x onerror=alert(1)>" und \'ging\'.'
    inline = explore(shipped, hostile, beam=1)._repr_html_()
    assert [tag for tag, _ in elements(inline)] == ["iframe"]  # no element escapes the attribute
    assert "<" not in inline[1:inline.rindex("</iframe>")]
    frame_page = elements(inline)[0][1]["srcdoc"]
    assert [tag for tag, _ in elements(frame_page)].count("script") == 2  # the page's data, then its code
    assert "img" not in [tag for tag, _ in elements(frame_page)]  # the sentence ends neither the data nor the title


def test_notebook_view_refuses_an_empty_or_too_long_sentence(setting):
    _, _, translator = setting
    with pytest.raises(ValueError, match='the sentence is empty: give a German sentence, e.g. "Ich habe'):
        explore(translator, " ")
    with pytest.raises(ValueError, match="the sentence has .* tokens; this model takes at most 24"):
        explore(translator, " ".join(["Katzen"] * 30))


# ---- plot_attention.py --html (the counting model) -------------------------------------------------------------


@pytest.fixture(scope="module")
def counting_checkpoint(tmp_path_factory):
    """A random sigmoid counting model of 3 digits in sequences of 6, saved as train.py saves it."""
    torch.manual_seed(0)
    config = CountingConfig(sequence_length=6, vocab_size=3, hidden=8)
    model = CountingModel(config.vocab_size, config.sequence_length, config.hidden)
    path = str(tmp_path_factory.mktemp("counting") / "model.pth")
    save_counting_model(model, config, path)
    return path, model, config


def test_counting_page_holds_each_digits_weights_over_the_positions(counting_checkpoint, tmp_path, capsys):
    path, model, config = counting_checkpoint
    page = tmp_path / "counting.html"
    plot_attention.main(plot_attention.parse_args(["--checkpoint", path, "--count", "4", "--html", str(page),
                                                   "--no-show"]))
    assert f"saved to {page}" in capsys.readouterr().out
    data = page_data(page.read_text(encoding="utf-8"))
    one_hot, digits, counts = make_counting_data(4, 6, 3, torch.Generator().manual_seed(1234))
    with torch.no_grad():
        logits, weights = model(one_hot)
    (view,) = data["views"]
    assert not view["normalised"] and len(view["entries"]) == 4
    stored = torch.tensor([entry["weights"][0] for entry in view["entries"]], dtype=torch.float64) / data["scale"]
    torch.testing.assert_close(stored, weights.double(), atol=1e-4, rtol=0)
    assert not torch.allclose(stored.sum(-1), torch.ones(4, 3, dtype=torch.float64), atol=1e-2)  # sigmoid weights
    first = view["entries"][0]
    assert first["keys"] == [str(digit) for digit in digits[0].tolist()]
    predicted = logits.argmax(-1)
    assert first["query_notes"][0].startswith(f"count {counts[0, 0]}, model {predicted[0, 0]}")


def test_counting_html_refuses_a_folder_before_any_work(counting_checkpoint, tmp_path):
    with pytest.raises(IsADirectoryError, match="--html .* is a folder"):
        flags = ["--checkpoint", counting_checkpoint[0], "--html", str(tmp_path)]
        plot_attention.main(plot_attention.parse_args(flags))
