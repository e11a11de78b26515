"""lib.debian_corpus.cleaning: every rule, each with a pair it must change or drop."""
import pytest

from lib.debian_corpus.cleaning import clean_pair, has_placeholder, repair, strip_accelerators


KEEP = ("Das Haus ist sehr groß.", "The house is very big.")


def test_a_clean_pair_is_kept_as_it_is():
    assert clean_pair(*KEEP) == (*KEEP, None)


@pytest.mark.parametrize("german, english", [("Datei", "Datei"), ("Datei", "datei "), ("", "File"), ("Datei", "  ")])
def test_untranslated_and_empty_entries_are_dropped(german, english):
    assert clean_pair(german, english)[2] in ("untranslated", "empty")


@pytest.mark.parametrize("text", ["Datei %s öffnen", "%1 Dateien", "%L1 Dateien", "{0} Dateien", "{name} fehlt",
                                  "Wert $(ARG1) fehlt", "%qD ist veraltet", "%(count)d Dateien", "%-5.2f Meter",
                                  "Pfad ${HOME}", "Version @VERSION@", "Datei %{file}", "%PRODUCTVERSION neu",
                                  "%d%% fertig", "$HOME fehlt", "%q#D fehlt", "Ziel%'s Gruppen"])
def test_placeholders_drop_the_pair(text):
    assert has_placeholder(text)
    assert clean_pair(text, "Some English words here")[2] == "placeholder"
    assert clean_pair("Ein deutscher Satz hier", text.replace("Datei", "File"))[2] == "placeholder"


@pytest.mark.parametrize("text", ["50 % der Dateien", "Kosten: $5", "Tom & Jerry", "a {b"])
def test_text_without_placeholders_is_not_taken_for_one(text):
    assert not has_placeholder(text)


@pytest.mark.parametrize("marked, plain", [("_Datei", "Datei"), ("&Datei", "Datei"), ("~Datei", "Datei"),
                                           ("Da&tei", "Datei"), ("F_ull screen", "Full screen"),
                                           ("B~riefanrede", "Briefanrede"), ("Tom && Jerry", "Tom & Jerry"),
                                           ("file_name_here", "file_name_here")])
def test_accelerators_are_stripped(marked, plain):
    assert strip_accelerators(marked) == plain


def test_accelerators_are_stripped_from_a_pair():
    assert clean_pair("Datei ö&ffnen", "_Open file")[:2] == ("Datei öffnen", "Open file")


def test_markup_and_entities_are_stripped():
    assert clean_pair("<b>Groß</b> &amp; <i>klein</i><br/>Ende", "<b>Big</b> &amp; <i>small</i><br>end") == \
        ("Groß & klein Ende", "Big & small end", None)
    assert repair("<filename>Datei</filename> &lt;x&gt;") == "Datei <x>"


def test_markup_on_one_side_only_drops_the_pair():
    assert clean_pair("<b>Groß</b> und klein", "Big and small")[2] == "markup differs"


def test_context_prefixes_bullets_and_the_product_name_are_repaired():
    assert clean_pair("race^Menschen", "race^Humans")[:2] == ("Menschen", "Humans")
    assert clean_pair("?verb:Bauen", "?verb:Build")[:2] == ("Bauen", "Build")
    assert clean_pair("‒ Sie können gehen.", "* You can go.")[:2] == ("Sie können gehen.", "You can go.")
    assert clean_pair("Über %PRODUCTNAME", "About %PRODUCTNAME")[:2] == ("Über LibreOffice", "About LibreOffice")


def test_digits_that_differ_drop_the_pair():
    assert clean_pair("Drücken Sie Alt+6.", "Press Alt+5.")[2] == "digits differ"
    assert clean_pair("Drücken Sie Alt+5.", "Press Alt+5.")[2] is None


def test_a_length_ratio_beyond_the_limit_drops_the_pair():
    assert clean_pair("Mehr", "More than you could ever imagine in a lifetime")[2] == "length ratio"
    assert clean_pair("Einstellungen", "Settings")[2] is None  # short strings are not judged


def test_no_words_drops_the_pair():
    assert clean_pair("…", "...")[2] == "no words"


@pytest.mark.parametrize("german, english", [("-s, --separator mögliche Trenner", "-s, --separator delimiters"),
                                             ("--sort nach Größe", "--sort by size"),
                                             ("Datei|Ordner wählen", "Choose file|folder"),
                                             ("Zeile\\nNeue Zeile", "Line\\nNew line")])
def test_command_line_syntax_and_escapes_drop_the_pair(german, english):
    assert clean_pair(german, english)[2] == "command line"
    assert clean_pair("Weder -a noch --sort angeben", "Give neither -a nor --sort")[2] is None


@pytest.mark.parametrize("identifier", ["multiple-operation-time-out-action", "media.om_medium-photo_130x180mm",
                                        "print_quality_high", "org.gnome.app"])
def test_identifiers_instead_of_text_drop_the_pair(identifier):
    assert clean_pair("Bei Zeitüberschreitung", identifier)[2] == "identifier"
    assert clean_pair("E-Mail-Adresse", "e-mail")[2] is None


def test_the_wrong_language_on_a_side_drops_the_pair():
    assert clean_pair("This is the file that you want", "This is the file you want")[2] == "wrong language"
    assert clean_pair("Das ist die Datei, die Sie wollen", "Das ist die Datei, die du willst")[2] == "wrong language"
    assert clean_pair("Das ist gut", "Größe")[2] == "wrong language"  # German letters on the English side
