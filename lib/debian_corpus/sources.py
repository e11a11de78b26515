"""The list of sources: which packages to fetch, the kind each counts as, and how its two languages align.

The file is tab-separated: ``package  kind  align  [english_package]``; '#' starts a comment. ``kind`` is the short
name written in the tsv's source column (games, software, ...); ``align`` names the aligner (see ALIGNERS in
lib.debian_corpus.build); ``english_package`` is the package holding the English side where it is another one.
"""
import os
import re
from dataclasses import dataclass

from lib.files import SHIPPED_DATA, open_text

DEFAULT_SOURCES = os.path.join(SHIPPED_DATA, "debian_sources.tsv")  # found from any working folder
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")


@dataclass(frozen=True)
class Source:
    """One line of the sources file."""
    package: str
    kind: str
    align: str
    english_package: str = ""

    @property
    def packages(self):
        """The packages to fetch: the German one and, where different, the English one."""
        return (self.package, self.english_package) if self.english_package else (self.package,)


def read_sources(path, aligners):
    """The sources listed in ``path``; ValueError naming the line for a malformed one or an unknown aligner."""
    sources = []
    with open_text(path, "--sources") as lines:
        for number, line in enumerate(lines, 1):
            source = _parse_source(line, f"{path} line {number}", aligners)
            if source is not None:
                sources.append(source)
    return sources


def _parse_source(line, where, aligners):
    """The Source of one line of a sources list (None for a blank or comment line); ``where`` names the line."""
    fields = line.split("#", 1)[0].split()
    if not fields:
        return None
    if len(fields) not in (3, 4):
        raise ValueError(f"{where}: expected 'package kind align [english_package]', got {line.strip()!r}")
    bad = [name for name in fields[:1] + fields[3:] if not PACKAGE_NAME.match(name)]
    if bad:
        raise ValueError(f"{where}: {bad[0]!r} is not a Debian package name")
    if fields[2] not in aligners:
        raise ValueError(f"{where}: unknown align {fields[2]!r}; use one of {', '.join(sorted(aligners))}")
    return Source(*fields)
