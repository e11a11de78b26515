"""lib.debian_corpus.libreoffice_help: help pages paired by paragraph id."""
import os


def write(path, text):
    """Write ``text`` to ``path``, making its folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


LIBREOFFICE_PAGE = """<html><body><h1 id="hd_id1" dir="auto">{title}</h1>
<p id="par_id2" class="paragraph">{text} <span class="switchinline"><span hidden="true" id="MACx_1" class="MAC">
<span class="keycode">{mac}</span></span><span hidden="true" id="defaultx_1"><span class="keycode">{key}</span></span>
</span>+F.</p><p id="par_id3" class="bascode">Print 1</p><p id="par_id9">{only}</p></body></html>"""


def test_libreoffice_help_pairs_paragraphs_by_id_without_platform_variants_or_code(tmp_path):
    from lib.debian_corpus.libreoffice_help import libreoffice_help_pairs
    german, english = str(tmp_path / "de"), str(tmp_path / "en")
    write(os.path.join(german, "usr/share/libreoffice/help/de/text/a.html"),
          LIBREOFFICE_PAGE.format(title="Suchen", text="Drücken Sie", mac="Befehl", key="Strg", only="Nur hier"))
    write(os.path.join(english, "usr/share/libreoffice/help/en-US/text/a.html"),
          LIBREOFFICE_PAGE.format(title="Find", text="Press", mac="Command", key="Ctrl", only="Only here")
          .replace("par_id9", "par_id10"))
    pairs = [(" ".join(g.split()), " ".join(e.split())) for g, e in libreoffice_help_pairs([german, english])]
    assert pairs == [("Suchen", "Find"), ("Drücken Sie Strg +F.", "Press Ctrl +F.")]
