"""Build a German-English parallel corpus from the translations that Debian's packages carry.

    python tools/build_parallel_corpus.py                 # all sources of data/debian_sources.tsv
    python tools/build_parallel_corpus.py --only games    # the game catalogues only

Packages are fetched with `apt-get download` (no root, nothing installed) into --cache-dir and never downloaded
twice; only the files a source reads are unpacked. Each source is aligned (gettext: msgid / msgstr; help pages: by
paragraph id or block order), split into sentences where both sides split alike, cleaned, de-duplicated, and
stripped of Ding's valid and test sentences.
Writes --out (german<TAB>english<TAB>source<TAB>package, no header) and a table per source beside it.
See docs/parallel-corpus.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from lib import files  # noqa: E402
from lib.cli import KEPT, int_range, run_main  # noqa: E402
from lib.debian_corpus.build import ALIGNERS, build  # noqa: E402
from lib.debian_corpus.fetch import require_tool  # noqa: E402
from lib.debian_corpus.report import summary_lines, write_tables  # noqa: E402
from lib.debian_corpus.sources import DEFAULT_SOURCES, read_sources  # noqa: E402
from lib.translation.corpus import DING_PATH as DING  # noqa: E402

DEFAULT_OUT = ".corpus/debian-de-en.tsv"


def build_parser():
    """The command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--cache-dir", default=".corpus/debian",
                        help="where downloaded packages and their unpacked files are kept between runs "
                             "(default: %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="the corpus tsv to write; the tables go beside it, with .sources.md (by source) and "
                             ".packages.tsv (by package) in place of .tsv (default: %(default)s, replaced by each "
                             "build; an existing file of your own only with --force)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.add_argument("--sources", default=DEFAULT_SOURCES,
                        help="the list of packages: package, kind, align [, English package] per line "
                             "(default: %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="KIND",
                        help="build only the sources of these kinds (e.g. games software); default: all")
    parser.add_argument("--jobs", type=int_range(1, 2), default=2,
                        help="processes that unpack and clean packages, at most 2 (default: %(default)s)")
    parser.add_argument("--deb-dir",
                        help="take the .deb files from this folder instead of downloading them with apt-get")
    parser.add_argument("--ding", default=None,
                        help="the Ding dictionary whose valid and test sentences are removed (default: the "
                             "installed /usr/share/trans/de-en)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(args):
    """Check the flags, build, print a summary; a build where a source failed keeps --out as it was and fails."""
    files.check_input(args.sources, "--sources")
    files.check_output(args.out, "--out", args.force, inputs=[args.sources], default=DEFAULT_OUT)
    files.check_output_folder(args.cache_dir, "--cache-dir")
    if args.deb_dir and not os.path.isdir(args.deb_dir):
        raise (NotADirectoryError if os.path.exists(args.deb_dir) else FileNotFoundError)(
            f"--deb-dir {args.deb_dir} is not a folder; give the folder that holds the .deb files")
    if args.ding is not None:
        files.check_input(args.ding, "--ding", seekable=True)
    elif not os.path.exists(DING):
        raise FileNotFoundError(f"the Ding dictionary is not installed at {DING}: install it (sudo apt-get install "
                                f"trans-de-en) or give its file with --ding PATH")
    sources = read_sources(args.sources, ALIGNERS)
    if not sources:
        raise ValueError(f"--sources {args.sources} lists no package; give a file with lines 'package kind align'")
    if args.only:
        kinds = sorted({source.kind for source in sources})
        unknown = sorted(set(args.only) - set(kinds))
        if unknown:
            raise ValueError(f"--only {' '.join(unknown)}: {args.sources} has no such kind; its kinds are "
                             f"{', '.join(kinds)}")
        sources = [source for source in sources if source.kind in args.only]
    require_tool("dpkg-deb")  # checked before any download
    progress_bar = None
    if not args.no_progress:
        from tqdm import tqdm
        progress_bar = tqdm
    KEPT.text = (f"{args.out} was left as it was; the packages fetched and unpacked so far stay in {args.cache_dir} "
                 "for the next run")  # what a stop (Ctrl-C, SIGTERM) keeps: lib.cli.run_main says it
    report = build(sources, args.cache_dir, args.out, args.jobs, args.deb_dir, args.ding, progress_bar)
    if "failed" not in report:
        KEPT.text = f"{args.out} was written; the tables beside it may be those of an earlier build"
        write_tables(report, args.out)
    print("\n".join(summary_lines(report, args.out)))
    if "failed" in report:
        raise RuntimeError(f"{report['failed']} of {len(sources)} sources failed" if report["failed"] else
                           "no pair was left after cleaning")
    return report


if __name__ == "__main__":
    run_main(main, build_parser().parse_args())
