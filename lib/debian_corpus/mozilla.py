"""German-English pairs from Mozilla's language packs: the German Fluent (.ftl) and .properties files of the
langpack (.xpi) against the en-US files of the same name inside the program's omni.ja archives, paired by message id
(and attribute). Messages with placeables or selectors ({ ... }) and plural lists (a;b, #1) are left to the
cleaning and to this reader's checks.
"""
import os
import re
import zipfile

LANGUAGE_PACK = re.compile(r"^usr/(?:lib|share)/[^/]+/(?:browser/)?(?:extensions/langpack-de@[^/]+\.xpi|omni\.ja)$")
FLUENT_MESSAGE = re.compile(r"^(-?[A-Za-z][\w-]*)\s*=\s?(.*)$")
FLUENT_ATTRIBUTE = re.compile(r"^\s+\.([\w-]+)\s*=\s?(.*)$")
PROPERTY = re.compile(r"^\s*([^#!=:\s][^=:]*?)\s*[=:]\s?(.*)$")
UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
PLURAL_LIST = re.compile(r";|#\d")


def fluent_messages(text):
    """Dict id (or id.attribute) -> value of a Fluent file; continuation lines are joined with spaces."""
    messages, message, last = {}, None, None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = FLUENT_MESSAGE.match(line)
        if match:
            message = last = match.group(1)
            messages[message] = match.group(2).strip()
            continue
        match = FLUENT_ATTRIBUTE.match(line)
        if match and message:
            last = f"{message}.{match.group(1)}"
            messages[last] = match.group(2).strip()
        elif line[:1].isspace() and last:
            messages[last] = (messages[last] + " " + line.strip()).strip()
    return messages


def property_messages(text):
    """Dict key -> value of a .properties file (\\uXXXX escapes decoded; plural lists left out)."""
    messages = {}
    for line in text.splitlines():
        match = PROPERTY.match(line)
        if match and not PLURAL_LIST.search(match.group(2)):
            messages[match.group(1)] = UNICODE_ESCAPE.sub(lambda code: chr(int(code.group(1), 16)), match.group(2))
    return messages


def english_name(german_name):
    """The en-US file name in omni.ja for a German file name in the langpack."""
    name = german_name.removeprefix("browser/")
    return name.replace("/de/", "/en-US/")


def _zip_files(folder, suffix):
    """The zip archives under ``folder`` whose names end with ``suffix``."""
    return [os.path.join(root, name) for root, _, files in os.walk(folder) for name in sorted(files)
            if name.endswith(suffix)]


def mozilla_pairs(folders):
    """Raw (German, English) messages: the unpacked language-pack package first, the program package second."""
    english_files = {}
    for path in _zip_files(folders[-1], "omni.ja"):
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError):
            continue
        for name in archive.namelist():
            if "en-US" in name and name.endswith((".ftl", ".properties")):
                english_files.setdefault(name, archive)
    pairs = []
    for path in _zip_files(folders[0], ".xpi"):
        try:
            langpack = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError):
            continue
        for name in langpack.namelist():
            archive = english_files.get(english_name(name))
            if archive is None:
                continue
            read = fluent_messages if name.endswith(".ftl") else property_messages
            german = read(langpack.read(name).decode("utf-8", errors="replace"))
            english = read(archive.read(english_name(name)).decode("utf-8", errors="replace"))
            pairs += [(text, english[key]) for key, text in german.items() if key in english and (text or english[key])]
    return pairs
