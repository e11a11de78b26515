"""lib.debian_corpus.mozilla: Fluent and .properties messages paired by id."""
import pytest


def test_mozilla_pairs_fluent_and_properties_messages_by_id(tmp_path):
    import zipfile
    from lib.debian_corpus.mozilla import mozilla_pairs
    german, english = tmp_path / "de", tmp_path / "en"
    langpack = german / "usr/lib/firefox-esr/browser/extensions/langpack-de@firefox-esr.mozilla.org.xpi"
    omni = english / "usr/lib/firefox-esr/browser/omni.ja"
    langpack.parent.mkdir(parents=True)
    omni.parent.mkdir(parents=True)
    with zipfile.ZipFile(langpack, "w") as archive:
        archive.writestr("browser/localization/de/browser/logins.ftl",
                         "# Kommentar\nlogins-title = Passwörter\nmenu =\n    .title = Menü öffnen\n"
                         "long-text =\n    Eine Zeile\n    und noch eine.\nonly-german = Nur hier\n")
        archive.writestr("chrome/de/locale/de/global/alert.properties",
                         "closeButton=Schlie\\u00dfen\ndownloads=#1 Download;#1 Downloads\n")
    with zipfile.ZipFile(omni, "w") as archive:
        archive.writestr("localization/en-US/browser/logins.ftl",
                         "logins-title = Passwords\nmenu =\n    .title = Open menu\n"
                         "long-text =\n    One line\n    and another.\n")
        archive.writestr("chrome/en-US/locale/en-US/global/alert.properties",
                         "closeButton = Close\ndownloads=#1 download;#1 downloads\n")
    assert sorted(mozilla_pairs([str(german), str(english)])) == sorted([
        ("Passwörter", "Passwords"), ("Menü öffnen", "Open menu"),
        ("Eine Zeile und noch eine.", "One line and another."), ("Schließen", "Close")])


@pytest.mark.parametrize("path, read", [("usr/lib/firefox-esr/browser/omni.ja", True),
                                        ("usr/share/thunderbird/omni.ja", True),  # usr/lib/thunderbird links to it
                                        ("usr/lib/thunderbird/extensions/langpack-de@thunderbird.mozilla.org.xpi",
                                         True),
                                        ("usr/lib/thunderbird/extensions/langpack-fr@thunderbird.mozilla.org.xpi",
                                         False)])
def test_the_mozilla_archives_are_recognised_by_path(path, read):
    from lib.debian_corpus.mozilla import LANGUAGE_PACK
    assert bool(LANGUAGE_PACK.search(path)) == read
