"""lib.debian_corpus.html_docs: HTML documentation paired block by block."""
import os


def write(path, text):
    """Write ``text`` to ``path``, making its folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def test_html_docs_find_the_english_page_and_pair_blocks_of_plausible_pages(tmp_path):
    from lib.debian_corpus.html_docs import html_docs_pairs
    german, english = str(tmp_path / "de"), str(tmp_path / "en")
    page = "<html><head><title>T</title></head><body><div class='navheader'><p>{nav}</p></div><h1>{title}</h1>" \
           "<p>{text}</p><pre>ls -l</pre><ul><li>{item}</li></ul></body></html>"
    write(os.path.join(german, "usr/share/doc/guide-de/html/ch1.de.html"),
          page.format(nav="Weiter", title="Einleitung", text="Das ist ein Handbuch.", item="Erster Punkt"))
    write(os.path.join(english, "usr/share/doc/guide/html/ch1.en.html"),
          page.format(nav="Next", title="Introduction", text="This is a manual.", item="First point"))
    write(os.path.join(german, "usr/share/doc/guide-de/html/ch2.de.html"),  # another version: not plausible
          page.format(nav="", title="Ein sehr langer Titel, der nicht passt", text="Nein.",
                      item="Ein langer Punkt, viel länger als der englische"))
    write(os.path.join(english, "usr/share/doc/guide/html/ch2.en.html"),
          page.format(nav="", title="Short", text="A long paragraph that has no counterpart at all here.",
                      item="Point"))
    assert html_docs_pairs([german, english]) == [("Einleitung", "Introduction"),
                                                  ("Das ist ein Handbuch.", "This is a manual."),
                                                  ("Erster Punkt", "First point")]
