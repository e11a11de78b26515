"""German-English parallel corpora: the Ding dictionary (default), tab-separated files, the IWSLT pair of files.

Every reader returns a list of ``Pair``s in file order; ``split_of`` assigns each pair to train / valid / test by a hash
of its German side, so the split never changes between runs or machines and the same German never lands in two splits.
Held-out (valid, test) pairs are full sentences only.

The Ding dictionary is the file DING_DICTIONARY names (an environment variable), else Debian's DING_PATH (package
trans-de-en). Without it the held-out sentences still come: data/ding_valid.tsv and data/ding_test.tsv ship them
(``read_shipped_splits``), so translating and scoring them work anywhere; training and the train and all splits need
the dictionary itself.
"""
import hashlib
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass

from lib.files import check_input, open_text

DING_PATH = "/usr/share/trans/de-en"  # where Debian's package trans-de-en installs the dictionary
DICTIONARY_VARIABLE = "DING_DICTIONARY"  # an environment variable naming the dictionary file elsewhere
FORMATS = ("ding", "tsv", "iwslt")
SPLITS = ("train", "valid", "test")
HELD_OUT_PER_MILLE = 50  # 5% of the full sentences each for valid and test: about 1000 pairs each with Ding
DATA_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")
SHIPPED_SPLITS = {name: os.path.join(DATA_FOLDER, f"ding_{name}.tsv") for name in ("valid", "test")}
EVERYDAY_PATH = os.path.join(DATA_FOLDER, "everyday.tsv")  # the everyday dev set, written for the project


def dictionary_path():
    """The Ding dictionary file read when no corpus is given: $DING_DICTIONARY when set, else DING_PATH."""
    return os.environ.get(DICTIONARY_VARIABLE) or DING_PATH


def missing_dictionary_message(path=None):
    """What is missing (the dictionary file ``path``, None: dictionary_path()), what needs it and the three ways to
    give it."""
    path = path or dictionary_path()
    where = (f"{DICTIONARY_VARIABLE}={path} names no file" if os.environ.get(DICTIONARY_VARIABLE) == path
             else f"{path} is missing")
    return (f"The German-English Ding dictionary is not installed ({where}); training, --split train and --split all "
            "need it (the held-out valid and test sentences ship in data/). Give it in one of three ways: --corpus "
            f"PATH; the environment variable {DICTIONARY_VARIABLE}=PATH; or Debian's path {DING_PATH} ('sudo apt-get "
            "install trans-de-en' on Debian/Ubuntu). Elsewhere download de-en.txt from the Ding project at TU "
            "Chemnitz (dict.tu-chemnitz.de) and give its path. A corpus of your own: --corpus PATH --corpus-format "
            "tsv|iwslt.")


@dataclass(frozen=True)
class Pair:
    """An aligned German-English pair; ``sentence`` marks full sentences, the only ones held out."""
    german: str
    english: str
    sentence: bool


_LABELS = re.compile(r"\{[^}]*\}|\[[^\]]*\]|<[^>]*>")
_PARENTHESES = re.compile(r"\([^()]*\)")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,!?;:])")
_QUOTES = {"’": "'", "‘": "'", "‚": "'", "„": '"', "“": '"', "”": '"', "«": '"', "»": '"'}
_QUOTE_CHARACTERS = re.compile("[" + "".join(_QUOTES) + "]")


def clean_text(text):
    """Strip Ding's labels ({m}, [ugs.], <...>) and parenthesised remarks; normalise quotes and spaces."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if not text.isascii():
        text = _QUOTE_CHARACTERS.sub(lambda match: _QUOTES[match.group()], text)
    if "{" in text or "[" in text or "<" in text:
        text = _LABELS.sub(" ", text)
    while "(" in text:  # innermost first, for nested parentheses
        shorter = _PARENTHESES.sub(" ", text)
        if shorter == text:
            break
        text = shorter
    text = _SPACES.sub(" ", text)
    if " " in text:
        text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return text.strip(" ;,")


def is_sentence(german):
    """A full sentence: starts with a capital letter or digit, has at least two words, ends with . ! or ?."""
    return (len(german) > 3 and (german[0].isupper() or german[0].isdigit() or german[0] in "\"'")
            and german[-1] in ".!?" and " " in german)


def _aligned_variants(german_variants, english_variants):
    """Pair the synonyms of one sub-entry: one to one when their numbers agree, else every German with the first
    English and the first German with every other English."""
    if len(german_variants) == len(english_variants):
        return list(zip(german_variants, english_variants))
    pairs = [(german, english_variants[0]) for german in german_variants]
    return pairs + [(german_variants[0], english) for english in english_variants[1:]]


def parse_ding_line(line, sentences_only=False):
    """One Ding line ``german :: english`` -> list of Pairs (sub-entries ' | ', synonyms '; ').

    sentences_only: return full sentences only, skipping the cleaning of entries that cannot be one (fast).
    """
    if line.startswith("#") or " :: " not in line:
        return []
    german_side, english_side = line.rstrip("\n").split(" :: ", 1)
    german_entries, english_entries = german_side.split(" | "), english_side.split(" | ")
    if len(german_entries) != len(english_entries):
        return []
    pairs = []
    for german_entry, english_entry in zip(german_entries, english_entries):
        if " / " in german_entry or " / " in english_entry:  # alternatives inside a phrase: not one translation
            continue
        if sentences_only and not any(mark in german_entry for mark in ".!?"):
            continue
        german_variants = [variant for variant in map(clean_text, german_entry.split("; ")) if variant]
        if sentences_only and not any(map(is_sentence, german_variants)):
            continue
        english_variants = [variant for variant in map(clean_text, english_entry.split("; ")) if variant]
        if not german_variants or not english_variants:
            continue
        for german, english in _aligned_variants(german_variants, english_variants):
            sentence = is_sentence(german)
            if sentence or not sentences_only:
                pairs.append(Pair(german, english, sentence))
    return pairs


def _lines(path, flag, hint=""):
    """The lines of the text file ``path`` given as ``flag`` (lib.files.open_text: UTF-8, plain or gzip-compressed
    whatever its name, a leading byte-order mark dropped; a bad line or damaged gzip data is a one-line ValueError
    naming ``flag``, the file and the line); a folder or a missing file a one-line OSError (lib.files.check_input,
    ending with ``hint``)."""
    with open_text(path, flag, hint=hint) as lines:
        yield from lines


def read_ding(path=None, sentences_only=False, flag="--corpus"):
    """All aligned pairs (or only the full sentences) of the Ding dictionary file ``path`` (None: dictionary_path()),
    in file order, without duplicates; ``flag`` names a ``path`` given in errors."""
    default = path is None or path == DING_PATH
    path = dictionary_path() if path is None else path
    if default and not os.path.isfile(path):
        raise FileNotFoundError(missing_dictionary_message(path))
    pairs, seen, entries, text_lines = [], set(), 0, 0
    for line in _lines(path, "the Ding dictionary" if default else flag):
        entries += " :: " in line
        text_lines += bool(line.strip()) and not line.startswith("#")
        if sentences_only and "." not in line and "!" not in line and "?" not in line:
            continue
        for pair in parse_ding_line(line, sentences_only):
            if (pair.german, pair.english) not in seen:
                seen.add((pair.german, pair.english))
                pairs.append(pair)
    if text_lines and not entries:
        raise ValueError(f"no line of {path} is in Ding format ('german :: english'); for a tsv (german<TAB>english) "
                         "add --corpus-format tsv")
    return pairs


def read_tsv(path, flag="--corpus"):
    """Tab-separated pairs, German first then English (Tatoeba/Anki exports; extra columns are ignored). Rows with an
    empty side are skipped with a warning; a file without any pair is a ValueError saying why (``flag`` names the
    file in errors of its text)."""
    pairs, one_sided = [], []
    for number, line in enumerate(_lines(path, flag), 1):
        columns = line.rstrip("\r\n").split("\t")
        if len(columns) < 2:
            if not line.strip():
                continue  # blank lines, e.g. at the end
            raise ValueError(f"{path}:{number}: expected 'german<TAB>english', got {line.strip()!r}")
        german, english = columns[0].strip(), columns[1].strip()
        if german and english:
            pairs.append(Pair(german, english, is_sentence(german)))
        elif german or english:
            one_sided.append(number)
    if one_sided:
        lines = ", ".join(map(str, one_sided[:5])) + (", ..." if len(one_sided) > 5 else "")
        skipped = (f"{len(one_sided)} row{'s' if len(one_sided) != 1 else ''} of {path} with an empty German or "
                   f"English side (line{'s' if len(one_sided) != 1 else ''} {lines})")
        if not pairs:
            raise ValueError(f"{path} holds no pair to use: all its {skipped}")
        warnings.warn(f"skipped {skipped}", stacklevel=2)
    elif not pairs:
        raise ValueError(f"the corpus file {path} is empty: it needs german<TAB>english lines")
    return pairs


def iwslt_files(path):
    """The German and English files of an IWSLT pair named by their common prefix or by either file."""
    prefix = path[:-3] if path.endswith((".de", ".en")) else path
    return {language: f"{prefix}.{language}" for language in ("de", "en")}


def check_corpus(path, corpus_format="ding", flag="--corpus", seekable=False):
    """Before any work: the file(s) of the corpus ``path`` in ``corpus_format`` can be read (lib.files.check_input;
    ``seekable``: not standard input). None, the Ding dictionary, is checked where it is read: the shipped valid and
    test sentences may stand in for it."""
    if path is None or corpus_format == "ding" and path == DING_PATH:
        return
    for file in (iwslt_files(path).values() if corpus_format == "iwslt" else [path]):
        check_input(file, flag, seekable=seekable)


def read_iwslt(path, flag="--corpus"):
    """The IWSLT pair of files: ``path`` is their common prefix (e.g. ``train.tags.de-en``; ``.de`` and ``.en`` are
    appended) or either file, given as ``flag``. Lines that are XML tags are skipped."""
    files = iwslt_files(path)
    prefix = files["de"][:-3]
    lines = {}
    for language in ("de", "en"):
        lines[language] = [line.strip() for line in _lines(files[language], flag)
                           if not line.lstrip().startswith("<")]
    if len(lines["de"]) != len(lines["en"]):
        raise ValueError(f"{prefix}.de has {len(lines['de'])} text lines but {prefix}.en has {len(lines['en'])}")
    return [Pair(german, english, True) for german, english in zip(lines["de"], lines["en"]) if german and english]


def read_corpus(path=None, corpus_format="ding", sentences_only=False, flag="--corpus"):
    """Read a corpus in one of FORMATS; ``path`` None means the Ding dictionary (dictionary_path()); ``flag`` names
    ``path`` in errors of its text.

    sentences_only: keep only full sentences (all that the valid and test splits hold), which reads faster. Where
    the dictionary is not installed, ``path`` None with sentences_only gives the shipped valid and test sentences
    (read_shipped_splits), whose splits are the dictionary's; without sentences_only it raises FileNotFoundError.
    """
    if corpus_format not in FORMATS:
        raise ValueError(f"corpus format must be one of {FORMATS}, got {corpus_format!r}")
    if corpus_format == "ding":
        if path is None and sentences_only and not os.path.exists(dictionary_path()):
            shipped = read_shipped_splits()
            return shipped["valid"] + shipped["test"]
        return read_ding(path, sentences_only, flag)
    if path is None:
        raise ValueError(f"--corpus PATH is needed with --corpus-format {corpus_format}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file (for iwslt the common prefix of its .de and "
                                ".en files)")
    pairs = read_tsv(path, flag) if corpus_format == "tsv" else read_iwslt(path, flag)
    return [pair for pair in pairs if pair.sentence] if sentences_only else pairs


def split_of(pair):
    """'train', 'valid' or 'test', from a hash of the German side; only full sentences are held out."""
    if not pair.sentence:
        return "train"
    bucket = int.from_bytes(hashlib.md5(pair.german.encode("utf-8")).digest()[:4], "big") % 1000
    if bucket < HELD_OUT_PER_MILLE:
        return "test"
    if bucket < 2 * HELD_OUT_PER_MILLE:
        return "valid"
    return "train"


def read_shipped_splits():
    """The dictionary's valid and test sentences as shipped in data/ (SHIPPED_SPLITS): {"valid": [Pair, ...],
    "test": [...]}, each in dictionary order, as split_corpus(read_corpus(dictionary, sentences_only=True)) gives
    them. The files hold german<TAB>english lines; lines starting with # are comments."""
    splits = {}
    for name, path in SHIPPED_SPLITS.items():
        splits[name] = []
        for number, line in enumerate(_lines(path, "the shipped split"), 1):
            if line.startswith("#") or not line.strip():
                continue
            columns = line.rstrip("\r\n").split("\t")
            if len(columns) != 2 or not all(columns):
                raise ValueError(f"{path}:{number}: expected 'german<TAB>english', got {line.strip()!r}; restore the "
                                 "file from the repository")
            splits[name].append(Pair(columns[0], columns[1], True))
    return splits


def split_corpus(pairs):
    """Dict split name -> list of pairs, each in corpus order."""
    splits = {name: [] for name in SPLITS}
    for pair in pairs:
        splits[split_of(pair)].append(pair)
    return splits


def corpus_line(line, split="test", path=None, corpus_format="ding"):
    """Pair number ``line`` (1-based) of ``split`` ('train', 'valid', 'test' or 'all', in corpus order).

    Returns (pair, number of pairs in the split, whether the pair is in the training split). A line out of range
    raises ValueError giving the valid range.
    """
    if split not in SPLITS + ("all",):
        raise ValueError(f"split must be one of {SPLITS + ('all',)}, got {split!r}")
    pairs = read_corpus(path, corpus_format, sentences_only=split in ("valid", "test"))
    chosen = pairs if split == "all" else split_corpus(pairs)[split]
    if chosen and not 1 <= line <= len(chosen):
        raise ValueError(f"line {line} is out of range: the {split} split has {len(chosen)} pairs, "
                         f"so --line must be between 1 and {len(chosen)}")
    if not chosen:
        raise ValueError(f"the {split} split of the corpus {path or DING_PATH} is empty: held-out splits hold full "
                         "sentences only (about 5% each), so the corpus needs more full sentences")
    pair = chosen[line - 1]
    return pair, len(chosen), split_of(pair) == "train"


_NOT_WORD = re.compile(r"[\W_]+")


def comparison_key(text):
    """``text`` with case and punctuation ignored ('Wie bitte?' and 'wie bitte' give one key): for finding held-out
    sentences inside other text."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


MISSING_EXTRA = ("build it with 'python tools/build_parallel_corpus.py' (Debian/Ubuntu; see docs/parallel-corpus.md), "
                 "or leave --extra-corpus out")


def read_extra_corpus(path, sources=None, flag="--extra-corpus"):
    """The pairs of a tsv of extra training text: ``german<TAB>english<TAB>source[<TAB>...]`` (the source may be
    missing: ''). ``sources``: a collection of source names to keep (None or empty: all); ``flag`` names ``path`` in
    errors of its text.

    Returns a list of (Pair, source) in file order. Raises a clear error for a missing file and for ``sources`` that
    the file does not hold."""
    wanted = set(sources or ())
    pairs, seen_sources = [], set()
    for number, line in enumerate(_lines(path, flag, MISSING_EXTRA), 1):
        columns = line.rstrip("\r\n").split("\t")
        if len(columns) < 2:
            if not line.strip():
                continue
            raise ValueError(f"{path}:{number}: expected 'german<TAB>english<TAB>source', got {line.strip()!r}")
        german, english = columns[0].strip(), columns[1].strip()
        source = columns[2].strip() if len(columns) > 2 else ""
        seen_sources.add(source)
        if german and english and (not wanted or source in wanted):
            pairs.append((Pair(german, english, is_sentence(german)), source))
    missing = wanted - seen_sources
    if missing:
        raise ValueError(f"the extra corpus {path} has no source {', '.join(sorted(missing))}; its sources are "
                         f"{', '.join(sorted(seen_sources)) or 'none'}")
    return pairs


def held_out_keys(pairs):
    """(German keys, English keys) of ``pairs`` (e.g. the valid and test splits), as sets of comparison_key()."""
    return {comparison_key(pair.german) for pair in pairs}, {comparison_key(pair.english) for pair in pairs}


def is_held_out(german, english, keys):
    """Whether the German or the English side equals a held-out sentence (``keys`` from held_out_keys)."""
    german_keys, english_keys = keys
    return comparison_key(german) in german_keys or comparison_key(english) in english_keys


def everyday_keys(path=EVERYDAY_PATH):
    """held_out_keys of the everyday dev set (data/everyday.tsv): never trained on; (set(), set()) without the file."""
    return held_out_keys(read_tsv(path, "the everyday dev set")) if os.path.isfile(path) else (set(), set())


def without_everyday(pairs, keys=None):
    """``pairs`` less those whose German or English side, case and punctuation ignored, is a sentence of the everyday
    dev set (``keys``: everyday_keys() unless given)."""
    keys = everyday_keys() if keys is None else keys
    return [pair for pair in pairs if not is_held_out(pair.german, pair.english, keys)]


def without_held_out(extra_pairs, splits, more_keys=None):
    """``extra_pairs`` ((Pair, source) tuples) less those whose German or English side, case and punctuation
    ignored, is a sentence of the valid or test split of ``splits``, of the everyday dev set, or of ``more_keys``
    (held_out_keys of another dev set), so that held-out text stays held out."""
    held_out = [held_out_keys(splits["valid"] + splits["test"]), everyday_keys()] + ([more_keys] if more_keys else [])
    return [(pair, source) for pair, source in extra_pairs
            if not any(is_held_out(pair.german, pair.english, keys) for keys in held_out)]
