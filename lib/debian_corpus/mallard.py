"""German-English pairs from GNOME-style help pages (Mallard .page files): usr/share/help/de/APP/X.page against
usr/share/help/C/APP/X.page. itstool writes the German page from the English one, so both have the same blocks in
the same order; a page whose block counts differ is skipped rather than misaligned.
"""
import os
import re
import xml.etree.ElementTree as ElementTree

from lib.debian_corpus.cleaning import plausible_alignment

HELP_PAGE = re.compile(r"^usr/share/help/(?:de|C)/[^/]+/.+\.page$")
BLOCKS = frozenset(("p", "title", "subtitle", "desc"))
SKIPPED = frozenset(("credit", "revision", "media", "screen", "comment", "name", "email", "years"))


def _local(tag):
    """The tag without its namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


SEQUENCE_JOINERS = {"keyseq": "+", "guiseq": " ▸ "}  # <keyseq><key>Ctrl</key><key>F</key></keyseq> -> Ctrl+F


def _text(element):
    """The text of ``element`` and its inline children, without SKIPPED subtrees; the keys of a key sequence and
    the items of a menu path are joined, not glued together."""
    joiner = SEQUENCE_JOINERS.get(_local(element.tag))
    if joiner is not None:
        return joiner.join(_text(child).strip() for child in element if _local(child.tag) not in SKIPPED)
    parts = [element.text or ""]
    for child in element:
        if _local(child.tag) not in SKIPPED:
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def page_blocks(path):
    """The texts of the page's blocks (p, title, subtitle, desc) in document order, translator credits left out;
    None for a page that is not well-formed XML."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError):
        return None
    blocks = []

    def visit(element):
        name = _local(element.tag)
        if name in SKIPPED:
            return
        if name in BLOCKS:
            blocks.append(" ".join(_text(element).split()))
            return
        for child in element:
            visit(child)
    visit(root)
    return blocks


def mallard_pairs(folders):
    """Raw (German, English) block texts of every German help page under the unpacked ``folders``."""
    pairs = []
    for folder in folders:
        german_root = os.path.join(folder, "usr", "share", "help", "de")
        for root, _, files in os.walk(german_root):
            for name in sorted(files):
                german_path = os.path.join(root, name)
                english_path = os.path.join(folder, "usr", "share", "help", "C",
                                            os.path.relpath(german_path, german_root))
                if not name.endswith(".page") or not os.path.exists(english_path):
                    continue
                german, english = page_blocks(german_path), page_blocks(english_path)
                if german is not None and english is not None and len(german) == len(english) \
                        and plausible_alignment(list(zip(german, english))):
                    pairs += zip(german, english)
    return pairs
