"""lib.debian_corpus.sentences: aligned paragraphs split into sentences where both sides agree."""
from lib.debian_corpus.sentences import aligned_paragraphs, aligned_sentences


def test_paragraphs_and_sentences_are_split_only_where_both_sides_agree():
    assert aligned_paragraphs("Eins.\n\nZwei.", "One.\n\nTwo.") == [("Eins.", "One."), ("Zwei.", "Two.")]
    assert aligned_paragraphs("Eins.\n\nZwei.", "One. Two.") == [("Eins.\n\nZwei.", "One. Two.")]
    assert aligned_sentences("Das ist z.B. gut. Er kommt!", "That is e.g. good. He comes!") == \
        [("Das ist z.B. gut.", "That is e.g. good."), ("Er kommt!", "He comes!")]
    assert aligned_sentences("Er kommt. Sie geht.", "He comes and she goes.") == \
        [("Er kommt. Sie geht.", "He comes and she goes.")]


def test_sentences_of_implausible_lengths_stay_one_pair():
    german = "Das Programm läuft. Es wird dann ausgeführt, um daraus den neuen Baum zu erzeugen."
    english = "Out of the files that match, the newest is taken and the program is run. Done."
    assert aligned_sentences(german, english) == [(german, english)]
