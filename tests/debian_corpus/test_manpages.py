"""lib.debian_corpus.manpages: manual pages paired block by block."""
import os


GERMAN_MANPAGE = r""".\" generated with po4a
.TH LS 1 "2022" "coreutils" "Dienstprogramme"
.SH BEZEICHNUNG
ls \- Verzeichnisinhalte auflisten
.SH BESCHREIBUNG
.PP
Auflistung von Informationen über die \fBDATEIen\fP.
.TP
\fB\-a\fP, \fB\-\-all\fP
Einträge nicht ignorieren
.nf
ls \-la /tmp
.fi
.SH ÜBERSETZUNG
Die deutsche Übersetzung wurde von Erika Mustermann erstellt.
"""


ENGLISH_MANPAGE = r""".TH LS 1 "2022" "coreutils" "User Commands"
.SH NAME
ls \- list directory contents
.SH DESCRIPTION
.PP
List information about the \fIFILEs\fR.
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries
.nf
ls \-la /tmp
.fi
"""


def test_manpages_pair_blocks_without_examples_option_tags_or_the_translators_section(tmp_path):
    import gzip
    from lib.debian_corpus.manpages import manpage_pairs
    german, english = str(tmp_path / "de"), str(tmp_path / "en")
    for folder, relative, text in ((german, "usr/share/man/de/man1/ls.1.gz", GERMAN_MANPAGE),
                                   (english, "usr/share/man/man1/ls.1.gz", ENGLISH_MANPAGE)):
        os.makedirs(os.path.dirname(os.path.join(folder, relative)))
        with gzip.open(os.path.join(folder, relative), "wt", encoding="utf-8") as handle:
            handle.write(text)
    assert manpage_pairs([german, english]) == [
        ("BEZEICHNUNG", "NAME"), ("ls - Verzeichnisinhalte auflisten", "ls - list directory contents"),
        ("BESCHREIBUNG", "DESCRIPTION"), ("Auflistung von Informationen über die DATEIen.",
                                          "List information about the FILEs."),
        ("Einträge nicht ignorieren", "do not ignore entries")]
