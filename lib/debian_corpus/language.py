"""Is a text German or English? A check on function words, which are frequent, short and rarely shared.

Words that are common in both languages ("in", "so", "also", "was", "die", "an", "man", "will") are left out, so a
hit counts for one language only. Texts with too few hits are not judged (short UI strings, names).
"""
import re

GERMAN_WORDS = frozenset("""
der das den dem des ein eine einen einem einer eines und oder aber nicht kein keine keinen ist sind waren
wird werden wurde wurden hat haben hatte hatten bist sein seine ihr ihre ich du er sie wir ihnen ihm mich dich
uns euch mit von zu zum zur auf aus bei nach vor über unter für durch gegen ohne um wenn dass weil ob wie wo wer
welche welcher welches dieser diese dieses diesem diesen jeder jede jedes alle auch noch schon nur sehr mehr kann
können muss müssen soll sollen darf dürfen möchten möchte wollen nicht nichts etwas hier dort jetzt dann doch
""".split())

ENGLISH_WORDS = frozenset("""
the a of and or but not no is are was were be been being has have had this that these those it its you your
he she we they them his her our their with from to for on at by about into through without if when which who what
where how can could should would must may might shall do does did cannot there here now then only very more all
each every any some other than
""".split())

_WORD = re.compile(r"[^\W\d_]+")
_GERMAN_LETTERS = re.compile("[äöüßÄÖÜ]")
MIN_HITS = 2  # function words needed before a text is judged


def language_hits(text):
    """(German function words, English function words) in ``text``, counted case-insensitively."""
    words = [word.lower() for word in _WORD.findall(text)]
    return sum(word in GERMAN_WORDS for word in words), sum(word in ENGLISH_WORDS for word in words)


def looks_german(text):
    """False only where the text is judged English: more English than German function words, at least MIN_HITS."""
    german, english = language_hits(text)
    return not (english >= MIN_HITS and english > german)


def looks_english(text):
    """False where the text is judged German: German letters (ä ö ü ß), or more German than English function
    words with at least MIN_HITS."""
    if _GERMAN_LETTERS.search(text):
        return False
    german, english = language_hits(text)
    return not (german >= MIN_HITS and german > english)
