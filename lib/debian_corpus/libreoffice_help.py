"""German-English pairs from LibreOffice's help (libreoffice-help-de against libreoffice-help-en-us): the pages
have the same paths, and their paragraphs and headings the same ids (par_id..., hd_id...).

Platform variants (the macOS key names beside the default ones) and code blocks are left out of the text.
"""
import os
import re
from html.parser import HTMLParser

HELP_ROOT = "usr/share/libreoffice/help"
HELP_PAGE = re.compile(r"^usr/share/libreoffice/help/(?:de|en-US)/text/.+\.html$")
PARAGRAPH_ID = re.compile(r"^(?:par|hd)_id\w+$")
SKIPPED_CLASSES = frozenset(("bascode", "code", "pycode", "MAC", "WIN", "UNX"))
VOID_ELEMENTS = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                           "track", "wbr"))


class _ParagraphParser(HTMLParser):
    """Collects the text of every element whose id is a paragraph id; text of nested elements with an id of their
    own goes to those, text of skipped elements (hidden variants, code) nowhere."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs = {}
        self.stack = []  # per open element: (paragraph id or None, skipped)

    def handle_starttag(self, tag, attrs):
        if tag in VOID_ELEMENTS:
            if tag == "br":
                self.handle_data(" ")
            return
        attributes = dict(attrs)
        element_id = attributes.get("id") or ""
        hidden_variant = "hidden" in attributes and not element_id.startswith("default")
        skipped = hidden_variant or bool(SKIPPED_CLASSES.intersection((attributes.get("class") or "").split()))
        paragraph = element_id if PARAGRAPH_ID.match(element_id) else None
        if paragraph:
            self.paragraphs.setdefault(paragraph, [])
        self.stack.append((paragraph, skipped))

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self.handle_data(" ")

    def handle_endtag(self, tag):
        if tag not in VOID_ELEMENTS and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if any(skipped for _, skipped in self.stack):
            return
        for paragraph, _ in reversed(self.stack):
            if paragraph:
                self.paragraphs[paragraph].append(data)
                return


def help_paragraphs(path):
    """Dict paragraph id -> its text (spaces as in the page) for the help page at ``path``."""
    parser = _ParagraphParser()
    with open(path, encoding="utf-8", errors="replace") as handle:
        parser.feed(handle.read())
    parser.close()
    return {paragraph: "".join(parts).strip() for paragraph, parts in parser.paragraphs.items()}


def libreoffice_help_pairs(folders):
    """Raw (German, English) paragraph texts: the unpacked German help package first, the English one second."""
    german_root = os.path.join(folders[0], HELP_ROOT, "de")
    english_root = os.path.join(folders[1], HELP_ROOT, "en-US")
    pairs = []
    for root, _, files in os.walk(german_root):
        for name in sorted(files):
            german_path = os.path.join(root, name)
            english_path = os.path.join(english_root, os.path.relpath(german_path, german_root))
            if not name.endswith(".html") or not os.path.exists(english_path):
                continue
            german, english = help_paragraphs(german_path), help_paragraphs(english_path)
            pairs += [(text, english[paragraph]) for paragraph, text in german.items()
                      if paragraph in english and (text or english[paragraph])]
    return pairs
