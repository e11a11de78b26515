"""German-English pairs from documentation shipped as HTML in a German and an English package (the Debian
Reference, the Debian FAQ, the New Maintainers' Guide, the Developer's Reference, the Debian Administrator's
Handbook, GIMP's help, KiCad's and LilyPond's manuals): the German page's counterpart is found by rewriting its path
(.de.html -> .en.html, /de/ -> /en/, de-DE -> en-US, ...); both pages come from one source, so their blocks
(paragraphs, headings, list items, table cells) are paired in order. A page pair whose block counts differ, or whose
blocks do not look aligned, is skipped rather than misaligned.
"""
import os
import re
from html.parser import HTMLParser

from lib.debian_corpus.cleaning import plausible_alignment

GERMAN_PAGE = re.compile(r"^usr/share/(?:doc/)?[^/]+(?:/[^/]+)*?"
                         r"(?:/[^/]+\.de\.html|/de(?:-DE)?/(?:[^/]+/)*[^/]+\.html)$")
ENGLISH_PAGE = re.compile(r"^usr/share/(?:doc/)?[^/]+/(?:.*\.en\.html|(?:.*/)?en(?:-US)?/.*\.html|.*/[^/.]+\.html)$"
                          r"|^usr/share/(?!doc/)[^/]+/[^/]+\.html$")
BLOCKS = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "td", "th", "li", "caption", "figcaption"))
SKIPPED = frozenset(("pre", "script", "style", "head", "noscript"))
VOID_ELEMENTS = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                           "track", "wbr"))
# German path -> English path rewrites, tried in order (on the path relative to the unpacked package)
PATH_REWRITES = ((re.compile(r"\.de\.html$"), ".en.html"), (re.compile(r"\.de\.html$"), ".html"),
                 (re.compile(r"/de-DE/"), "/en-US/"), (re.compile(r"-de/"), "/"), (re.compile(r"/de/"), "/en/"),
                 (re.compile(r"/de/"), "/"))


class _BlockParser(HTMLParser):
    """The text of every block element in document order; text inside nested blocks goes to the innermost one."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks = []
        self.stack = []  # per open element: (block index or None, skipped)

    def handle_starttag(self, tag, attrs):
        if tag in VOID_ELEMENTS:
            if tag == "br":
                self.handle_data(" ")
            return
        classes = (dict(attrs).get("class") or "").split()
        skipped = tag in SKIPPED or any(name.startswith("nav") for name in classes)
        block = None
        if tag in BLOCKS:
            block = len(self.blocks)
            self.blocks.append([])
        self.stack.append((tag, block, skipped))

    def handle_endtag(self, tag):
        if tag in VOID_ELEMENTS:
            return
        for depth in range(len(self.stack) - 1, -1, -1):  # tolerate unclosed inner elements (<li>, <p>)
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        if any(skipped for _, _, skipped in self.stack):
            return
        for _, block, _ in reversed(self.stack):
            if block is not None:
                self.blocks[block].append(data)
                return


def page_blocks(path):
    """The block texts of the HTML page at ``path``, in order, spaces collapsed (empty blocks kept)."""
    parser = _BlockParser()
    with open(path, encoding="utf-8", errors="replace") as handle:
        parser.feed(handle.read())
    parser.close()
    return [" ".join("".join(parts).split()) for parts in parser.blocks]


def english_counterpart(relative_path, english_folder):
    """The English page for a German page's path (relative to its package), or None: the first that exists of the
    paths that the rewrites give, alone or combined (in PATH_REWRITES order)."""
    for chosen in range(1, 2 ** len(PATH_REWRITES)):
        candidate = relative_path
        for number, (pattern, replacement) in enumerate(PATH_REWRITES):
            if chosen >> number & 1:
                candidate = pattern.sub(replacement, candidate, count=1)
        if candidate != relative_path and os.path.exists(os.path.join(english_folder, candidate)):
            return os.path.join(english_folder, candidate)
    return None


def html_docs_pairs(folders):
    """Raw (German, English) block texts: the unpacked German package first, the English one second (or the same
    package, for one that ships both languages)."""
    german_folder, english_folder = folders[0], folders[-1]
    pairs = []
    for root, _, files in os.walk(german_folder):
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(root, name), german_folder)
            if not GERMAN_PAGE.search(relative):
                continue
            english_path = english_counterpart(relative, english_folder)
            if english_path is None:
                continue
            german, english = page_blocks(os.path.join(german_folder, relative)), page_blocks(english_path)
            if len(german) == len(english) and plausible_alignment(list(zip(german, english))):
                pairs += [(german_block, english_block) for german_block, english_block in zip(german, english)
                          if german_block or english_block]
    return pairs
