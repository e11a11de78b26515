"""The rules that repair a German-English pair (accelerators, markup, entities, spaces) or drop it (untranslated,
placeholders, digits that differ, length ratio, a side in the wrong language).

``repair`` and ``drop_reason`` are the two halves; ``clean_pair`` applies both and returns the repaired pair or the
name of the rule that dropped it (the names are counted in the build's report).
"""
import html
import re

from lib.debian_corpus.language import looks_english, looks_german

PLACEHOLDERS = re.compile("|".join((
    r"%%",                                                     # a printf'd percent sign: the text is a format
    r"%\(\w+\)[-+#0 ]*\d*(?:\.\d+)?[a-zA-Z]",                  # Python %(name)s
    r"%(?:\d+\$)?[-+#0'q]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64|I)?[diouxXeEfFgGcsSpaAn@]",  # printf
    r"%L?\d+",                                                 # Qt / KDE %1, %L1
    r"%[-+#0'q]*[A-Za-z]\b", r"%[+#q]+[A-Za-z]", r"%[<>]",      # GCC %qD %q#D %+D %D %<
    r"%\{\w+\}", r"%\w+%", r"%[A-Z]{2,}\w*",                    # Ruby %{name}, %NAME%, %PRODUCTVERSION
    r"\{\{?[\w.:!,#\-\[\] ]*\}\}?",                            # {0} {name} {{count}} {0:N2}
    r"\$\(\w+\)", r"\$\{\w+\}", r"\$\[\w+\]", r"\$[A-Za-z_]\w*",  # $(ARG1) ${VAR} $[officename] $HOME
    r"@\w+@",                                                  # autoconf @VERSION@
)))
TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>")
BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
# An accelerator mark: one &, _ or ~ before a letter, anywhere in a word (&File, Fi&le, F_ull, B~rief); &amp; is not
ACCELERATORS = (re.compile(r"&(?=[^\W\d_])(?![A-Za-z]+;|#\d+;)"), re.compile(r"_(?=[^\W_])"),
                re.compile(r"~(?=[^\W_])"))
ACCELERATOR_IN_PARENTHESES = re.compile(r"\s*\([&_~][A-Za-z0-9]\)")        # "Datei (&F)" as in CJK catalogues
CONTEXT_PREFIX = re.compile(r"^(?:[\w ]+\^|\?[\w ]+:)(?=\S)")             # "race^Human" (Wesnoth), "?verb:Build"
BULLET = re.compile(r"^[-*‒–—•·]\s+")
PRODUCT_NAMES = re.compile(r"%PRODUCTNAME\b|\$\[officename\]")               # LibreOffice's name variables
SPACES = re.compile(r"\s+")
DIGITS = re.compile(r"\d+")
IDENTIFIER = re.compile(r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*(?:[_.][a-z0-9]+|(?:-[a-z0-9]+){2})(?:[-_.][a-z0-9]+)*$")
COMMAND_LINE = re.compile(r"^-{1,2}[A-Za-z]|\||\\")  # an option tag first, alternatives a|b, escapes \n \X
LETTER = re.compile(r"[^\W\d_]")
MAX_LENGTH_RATIO = 2.5
RATIO_FROM_LENGTH = 15  # the length ratio is checked when the longer side has at least this many characters
PLAUSIBLE_RATIO = 2.0  # what a well-aligned block or sentence pair keeps to (translations are rarely further apart)
PLAUSIBLE_SHARE = 0.8  # the share of a page's translated block pairs that must keep to it


def has_placeholder(text):
    """Whether ``text`` holds a format placeholder (%s, %1, {0}, $(ARG1), %qD, ...): such strings are templates,
    not sentences."""
    return PLACEHOLDERS.search(text) is not None


def strip_markup(text):
    """Remove HTML / KUIT / Pango tags (a line break becomes a space) and decode entities (&amp; -> &)."""
    if "<" in text:
        text = TAG.sub("", BREAK_TAG.sub(" ", text))
    return text


def strip_accelerators(text):
    """Remove a keyboard accelerator mark: _File, Fi&le, B~rief -> File, File, Brief; && -> &. A mark that occurs
    more than once in a text is no accelerator (snake_case_names) and stays."""
    if "&" in text:
        text = text.replace("&&", "\0")
    for pattern in ACCELERATORS:
        if len(pattern.findall(text)) == 1:
            text = pattern.sub("", text)
    return text.replace("\0", "&")


def repair(text):
    """A side cleaned of context prefixes, markup, accelerators and entities, on one line with single spaces."""
    text = ACCELERATOR_IN_PARENTHESES.sub("", CONTEXT_PREFIX.sub("", text))
    text = strip_accelerators(strip_markup(text))
    if "&" in text:
        text = html.unescape(text)
    return BULLET.sub("", SPACES.sub(" ", text).strip())


def same_text(first, second):
    """Equal when case and spaces are ignored."""
    return first.casefold().split() == second.casefold().split()


def length_ratio_ok(german, english, limit=MAX_LENGTH_RATIO):
    """Character lengths within ``limit`` times each other (checked from RATIO_FROM_LENGTH characters on)."""
    longer, shorter = max(len(german), len(english)), min(len(german), len(english))
    return longer < RATIO_FROM_LENGTH or longer <= limit * max(shorter, 1)


def plausible_alignment(pairs):
    """Whether block pairs matched by position look aligned: of those translated (both sides non-empty and
    different), at least PLAUSIBLE_SHARE have lengths within PLAUSIBLE_RATIO. A page of another version, where the
    blocks happen to be as many, fails."""
    judged = [(german, english) for german, english in pairs if german and english and german != english]
    good = sum(length_ratio_ok(german, english, PLAUSIBLE_RATIO) for german, english in judged)
    return not judged or good >= PLAUSIBLE_SHARE * len(judged)


def drop_reason(german, english):
    """The rule that drops this repaired pair, or None to keep it."""
    if not german or not english:
        return "empty"
    if same_text(german, english):
        return "untranslated"
    if not LETTER.search(german) or not LETTER.search(english):
        return "no words"
    if COMMAND_LINE.search(german) or COMMAND_LINE.search(english):
        return "command line"
    if IDENTIFIER.match(english) or IDENTIFIER.match(german):
        return "identifier"
    if sorted(DIGITS.findall(german)) != sorted(DIGITS.findall(english)):
        return "digits differ"
    if not length_ratio_ok(german, english):
        return "length ratio"
    if not looks_german(german) or not looks_english(english):
        return "wrong language"
    return None


def clean_pair(german, english):
    """(german, english, None) repaired, or (None, None, reason) where a rule drops the pair."""
    if not german.strip() or not english.strip():
        return None, None, "empty"
    if same_text(german, english):
        return None, None, "untranslated"
    german, english = PRODUCT_NAMES.sub("LibreOffice", german), PRODUCT_NAMES.sub("LibreOffice", english)
    if has_placeholder(german) or has_placeholder(english):
        return None, None, "placeholder"
    if ("<" in german) != ("<" in english) and (TAG.search(german) or TAG.search(english)):
        return None, None, "markup differs"
    german, english = repair(german), repair(english)
    reason = drop_reason(german, english)
    return (None, None, reason) if reason else (german, english, None)
