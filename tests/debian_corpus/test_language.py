"""lib.debian_corpus.language: which texts count as German or English."""
from lib.debian_corpus.language import looks_english, looks_german


def test_the_language_check_judges_only_texts_with_enough_function_words():
    assert looks_german("Das ist nicht die Datei.") and not looks_german("This is not the file.")
    assert looks_english("This is not the file.") and not looks_english("Das ist nicht die Datei und nicht mehr.")
    assert looks_german("Firefox") and looks_english("Firefox")
