"""lib.debian_corpus.sources: the list of packages, read with bad lines named."""
import os

import pytest

from lib.debian_corpus.sources import DEFAULT_SOURCES, read_sources


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_sources_file_of_the_repository_reads_from_any_folder_and_bad_lines_are_named(tmp_path, monkeypatch):
    from lib.debian_corpus.build import ALIGNERS
    monkeypatch.chdir(tmp_path)  # the builder's default list is the shipped one, wherever it is run from
    assert os.path.samefile(DEFAULT_SOURCES, os.path.join(ROOT, "data", "debian_sources.tsv"))
    sources = read_sources(DEFAULT_SOURCES, ALIGNERS)
    assert len(sources) > 100 and {source.kind for source in sources} >= {"games", "software"}
    bad = tmp_path / "sources.tsv"
    bad.write_text("demo-data\tgames\tbogus\n")
    with pytest.raises(ValueError, match="line 1: unknown align 'bogus'"):
        read_sources(str(bad), ALIGNERS)
    bad.write_text("# comment\n\nDemo_Data\tgames\tgettext\n")
    with pytest.raises(ValueError, match="line 3: 'Demo_Data' is not a Debian package name"):
        read_sources(str(bad), ALIGNERS)
