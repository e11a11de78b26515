"""German-English pairs from manual pages: a German page (usr/share/man/de/manN/NAME.N.gz, from manpages-de or from
the package itself) against the English page of the same name. The roff source is read as blocks (a paragraph, a
heading, a .TP tag, a .TP body); pages are paired block by block where their block counts agree, else section by
section where the sections' counts agree. Example blocks (.nf/.fi, .EX/.EE) are left out.
"""
import gzip
import os
import re

from lib.debian_corpus.cleaning import plausible_alignment

GERMAN_PAGE = re.compile(r"^usr/share/man/de/man\d\w*/[^/]+$")
ENGLISH_PAGE = re.compile(r"^usr/share/man/man\d\w*/[^/]+$")
BREAKS = frozenset(("PP", "P", "LP", "HP", "sp", "TP", "IP", "SH", "SS", "TQ", "RS", "RE", "in", "ti"))
FONT_MACROS = frozenset(("B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB", "UR", "MT"))
NO_FILL_START, NO_FILL_END = frozenset(("nf", "EX")), frozenset(("fi", "EE"))
ESCAPES = (("\\-", "-"), ("\\(em", "—"), ("\\(en", "–"), ("\\(lq", "“"), ("\\(rq", "”"), ("\\(aq", "'"),
           ("\\(bu", "•"), ("\\(co", "©"), ("\\(dq", '"'), ("\\(Fo", "«"), ("\\(Fc", "»"), ("\\(fo", "‹"),
           ("\\(fc", "›"), ("\\(oq", "‘"), ("\\(cq", "’"), ("\\(ha", "^"), ("\\(ti", "~"), ("\\(rs", "\\e"),
           ("\\(:a", "ä"), ("\\(:o", "ö"), ("\\(:u", "ü"), ("\\(:A", "Ä"), ("\\(:O", "Ö"), ("\\(:U", "Ü"),
           ("\\(ss", "ß"), ("\\(mu", "×"), ("\\ ", " "), ("\\~", " "), ("\\0", " "), ("\\&", ""), ("\\,", ""),
           ("\\/", ""), ("\\:", ""), ("\\%", ""), ("\\|", ""), ("\\^", ""), ("\\c", ""))
FONT = re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)")
SIZE = re.compile(r"\\s[-+]?\d")
STRING = re.compile(r"\\\*(?:\[[^\]]*\]|\(..|.)")
COMMENT = re.compile(r'\\".*$')
QUOTED_ARGUMENT = re.compile(r'"([^"]*)"|(\S+)')
TRANSLATOR_SECTIONS = frozenset(("ÜBERSETZUNG", "ÜBERSETZER", "ÜBERSETZUNGEN", "TRANSLATION", "TRANSLATORS"))


def roff_text(line):
    """A line of roff text with fonts, sizes, strings and the common escapes resolved; '' where an unknown escape
    remains (the line is not plain text)."""
    line = SIZE.sub("", FONT.sub("", COMMENT.sub("", line)))
    for escape, character in ESCAPES:
        line = line.replace(escape, character)
    line = STRING.sub("", line)
    if "\\" in line.replace("\\e", ""):
        return ""
    return line.replace("\\e", "\\")


def macro_arguments(rest):
    """The arguments of a macro line, quotes removed, joined by spaces (font alternation as in .BR)."""
    return " ".join(quoted or bare for quoted, bare in QUOTED_ARGUMENT.findall(rest))


def page_sections(text):
    """The page as a list of sections, each a list of block texts (spaces collapsed; empty blocks dropped); the
    translators' section that manpages-de appends is left out."""
    sections, block, no_fill, tag_next = [[]], [], False, False

    def close():
        joined = " ".join(" ".join(block).split())
        if joined:
            sections[-1].append(joined)
        block.clear()

    for line in text.splitlines():
        if line.startswith((".", "'")):
            request, _, rest = line[1:].strip().partition(" ")
            if request in NO_FILL_START:
                close()
                no_fill = True
            elif request in NO_FILL_END:
                no_fill = False
            elif request in ("SH", "SS"):
                close()
                if request == "SH":
                    sections.append([])
                block.append(roff_text(macro_arguments(rest)))
                close()
            elif request in BREAKS:
                close()
                if request == "IP" and rest:
                    block.append(roff_text(macro_arguments(rest)))
                    close()
                tag_next = request in ("TP", "TQ")
            elif request in FONT_MACROS and not no_fill:
                block.append(roff_text(macro_arguments(rest)))
                if tag_next:
                    close()
                    tag_next = False
            continue
        if no_fill:
            continue
        if not line.strip():
            close()
            continue
        block.append(roff_text(line))
        if tag_next:
            close()
            tag_next = False
    close()
    return [section for section in sections if section and section[0].upper() not in TRANSLATOR_SECTIONS]


def read_page(path):
    """The sections of the (gzip-compressed) page at ``path``; None for a link or an unreadable page."""
    if path.endswith(".link"):
        return None
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except (OSError, EOFError):
        return None
    if text.lstrip().startswith(".so "):
        return None
    return page_sections(text)


def aligned_blocks(german_sections, english_sections):
    """Block pairs of one page: all blocks in order where both have as many and look aligned, else the sections
    (paired in order, when as many) that have as many blocks and look aligned."""
    german_blocks = [block for section in german_sections for block in section]
    english_blocks = [block for section in english_sections for block in section]
    whole = list(zip(german_blocks, english_blocks))
    if len(german_blocks) == len(english_blocks) and plausible_alignment(whole):
        return whole
    pairs = []
    if len(german_sections) == len(english_sections):
        for german_section, english_section in zip(german_sections, english_sections):
            section_pairs = list(zip(german_section, english_section))
            if len(german_section) == len(english_section) and plausible_alignment(section_pairs):
                pairs += section_pairs
    return pairs


def manpage_pairs(folders):
    """Raw (German, English) blocks of the German pages of the first unpacked package against the English pages
    of the last (the same package, or the one that ships the English page)."""
    german_root = os.path.join(folders[0], "usr", "share", "man", "de")
    english_root = os.path.join(folders[-1], "usr", "share", "man")
    pairs = []
    for root, _, files in os.walk(german_root):
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(root, name), german_root)
            english_path = os.path.join(english_root, relative)
            if not os.path.exists(english_path):
                continue
            german, english = read_page(os.path.join(german_root, relative)), read_page(english_path)
            if german and english:
                pairs += [(german_block, english_block) for german_block, english_block
                          in aligned_blocks(german, english) if not german_block.startswith("-")]  # option tags
    return pairs
