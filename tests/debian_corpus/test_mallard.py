"""lib.debian_corpus.mallard: Mallard guides paired block by block."""
import os


def write(path, text):
    """Write ``text`` to ``path``, making its folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


MALLARD_PAGE = """<?xml version="1.0" encoding="utf-8"?>
<page xmlns="http://projectmallard.org/1.0/" id="x"><info><credit><name>Erika</name></credit>
<desc>{desc}</desc></info><title>{title}</title><p>{text} <gui>{gui}</gui>.</p>{extra}</page>"""


def test_mallard_pairs_blocks_in_order_and_skips_pages_that_differ(tmp_path):
    from lib.debian_corpus.mallard import mallard_pairs
    folder = str(tmp_path)
    german = dict(desc="Tasten ignorieren.", title="Tastatur", text="Klicken Sie auf", gui="Einstellungen")
    english = dict(desc="Ignore keys.", title="Keyboard", text="Click", gui="Settings")
    keys = ("<p>Drücken Sie <keyseq><key>Strg</key><key>F</key></keyseq> oder "
            "<guiseq><gui>Datei</gui><gui>Suchen</gui></guiseq>.</p>")
    write(os.path.join(folder, "usr/share/help/de/app/a.page"), MALLARD_PAGE.format(extra=keys, **german))
    write(os.path.join(folder, "usr/share/help/C/app/a.page"), MALLARD_PAGE.format(
        extra=keys.replace("Drücken Sie", "Press").replace("Strg", "Ctrl").replace("oder", "or")
        .replace("Datei", "File").replace("Suchen", "Find"), **english))
    write(os.path.join(folder, "usr/share/help/de/app/b.page"), MALLARD_PAGE.format(extra="", **german))
    write(os.path.join(folder, "usr/share/help/C/app/b.page"), MALLARD_PAGE.format(extra="<p>More.</p>", **english))
    assert mallard_pairs([folder]) == [("Tasten ignorieren.", "Ignore keys."), ("Tastatur", "Keyboard"),
                                       ("Klicken Sie auf Einstellungen.", "Click Settings."),
                                       ("Drücken Sie Strg+F oder Datei ▸ Suchen.", "Press Ctrl+F or File ▸ Find.")]
