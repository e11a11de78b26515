"""German-English pairs from gettext catalogues (.mo compiled, .po source): msgid (English) and msgstr (German).

Plural entries give two pairs (singular, plural); contexts are dropped; fuzzy, obsolete and header entries and the
translator-credit entries are skipped.
"""
import os
import re

import polib

# German catalogues: .../de/LC_MESSAGES/NAME.mo (or .po), and de.po / NAME.de.po / NAME_de.po files.
GERMAN_CATALOGUE = re.compile(r"(?:/(?:de|de_DE)/LC_MESSAGES/[^/]+\.(?:mo|po)|(?:^|/)(?:[^/]*[._-])?de\.po)$")
TRANSLATOR_CREDITS = frozenset(("your names", "your emails", "name of translators", "email of translators",
                                "translator-credits", "translator_credits", "translator credits", "translators"))


def read_catalogue(path):
    """The polib catalogue at ``path`` (.mo or .po); ValueError for a file polib cannot read."""
    try:
        return polib.mofile(path) if path.endswith(".mo") else polib.pofile(path)
    except (OSError, ValueError, UnicodeDecodeError, IndexError) as error:
        raise ValueError(f"{path} is not a readable gettext catalogue: {error}") from None


def entry_pairs(entry):
    """The (German, English) texts of one catalogue entry, untouched; none for skipped entries."""
    if entry.obsolete or "fuzzy" in entry.flags or not entry.msgid:
        return []
    if entry.msgid.strip().casefold() in TRANSLATOR_CREDITS or (entry.msgctxt or "").casefold() in TRANSLATOR_CREDITS:
        return []
    if entry.msgid_plural:
        forms = entry.msgstr_plural
        pairs = [(forms.get(0, ""), entry.msgid)]
        if 1 in forms:
            pairs.append((forms[1], entry.msgid_plural))
        return pairs
    return [(entry.msgstr, entry.msgid)]


def catalogue_pairs(path):
    """All (German, English) texts of the catalogue at ``path``, in file order."""
    return [pair for entry in read_catalogue(path) for pair in entry_pairs(entry)]


def gettext_pairs(folders):
    """Raw (German, English) texts of every German gettext catalogue under the unpacked ``folders``."""
    pairs = []
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                path = os.path.join(root, name)
                if GERMAN_CATALOGUE.search(os.path.relpath(path, folder)):
                    try:
                        pairs += catalogue_pairs(path)
                    except ValueError:
                        continue  # a broken catalogue costs its own pairs only
    return pairs
