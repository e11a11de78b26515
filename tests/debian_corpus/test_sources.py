"""lib.debian_corpus.sources: the list of packages, read with bad lines named."""
import os

import pytest

from lib.debian_corpus.sources import DEFAULT_SOURCES, read_sources


from lib.files import REPOSITORY as ROOT


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


def test_a_gzip_list_reads_as_its_text(tmp_path):
    import gzip
    from lib.debian_corpus.build import ALIGNERS
    text = "# comment\ndemo-data\tgames\tgettext\ndemo-doc\tdocs\tgettext demo-doc-en\n"
    plain, packed = tmp_path / "sources.tsv", tmp_path / "sources.tsv.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    assert read_sources(str(packed), ALIGNERS) == read_sources(str(plain), ALIGNERS)
    assert [source.packages for source in read_sources(str(plain), ALIGNERS)] == [("demo-data",),
                                                                                  ("demo-doc", "demo-doc-en")]
