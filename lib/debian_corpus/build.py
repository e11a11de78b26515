"""The corpus build: fetch the packages of the sources, align and clean each source, remove duplicates, Ding's
held-out sentences and the sentences of data/everyday.tsv, write one tsv (german, english, source, package) and the
table per source."""
import os
import re
from collections import Counter
from dataclasses import dataclass, field
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from lib.files import atomic_output
from lib.translation.corpus import everyday_keys, held_out_keys, is_held_out, is_sentence, read_corpus, split_corpus
from lib.debian_corpus.cleaning import clean_pair, drop_reason
from lib.debian_corpus.fetch import deb_path, download, is_unpacked, unpack, unpacked_dir
from lib.debian_corpus.gettext import GERMAN_CATALOGUE, gettext_pairs
from lib.debian_corpus.libreoffice_help import HELP_PAGE as LIBREOFFICE_HELP_PAGE, libreoffice_help_pairs
from lib.debian_corpus.html_docs import ENGLISH_PAGE as HTML_ENGLISH_PAGE, GERMAN_PAGE as HTML_GERMAN_PAGE
from lib.debian_corpus.html_docs import html_docs_pairs
from lib.debian_corpus.mallard import HELP_PAGE as MALLARD_PAGE, mallard_pairs
from lib.debian_corpus.manpages import ENGLISH_PAGE as ENGLISH_MANPAGE, GERMAN_PAGE as GERMAN_MANPAGE, manpage_pairs
from lib.debian_corpus.mozilla import LANGUAGE_PACK, mozilla_pairs
from lib.debian_corpus.sentences import aligned_paragraphs, aligned_sentences

DOC_FILES = re.compile(r"^usr/share/doc/[^/]+(?:/copyright)?$")  # the copyright file, or the doc folder's link
LICENSE_FIELD = re.compile(r"^License:[ \t]*(\S[^\n]*)$", re.MULTILINE)


# align name -> (the members its packages must unpack, a regex on paths; a function from the unpacked folders of a
# source's packages to raw (German, English) texts)
ALIGNERS = {"gettext": (GERMAN_CATALOGUE, gettext_pairs),
            "libreoffice-help": (LIBREOFFICE_HELP_PAGE, libreoffice_help_pairs),
            "mallard": (MALLARD_PAGE, mallard_pairs),
            "html-docs": (re.compile(HTML_GERMAN_PAGE.pattern + "|" + HTML_ENGLISH_PAGE.pattern), html_docs_pairs),
            "manpages": (re.compile(GERMAN_MANPAGE.pattern + "|" + ENGLISH_MANPAGE.pattern), manpage_pairs),
            "mozilla": (LANGUAGE_PACK, mozilla_pairs)}


def unpack_patterns(sources):
    """Dict package -> the regex of the members to unpack: what the aligners of all its sources read, and the
    licence. A package keeps its unpacked files until a new kind of source wants more of it."""
    aligns = {}
    for source in sources:
        for package in source.packages:
            aligns.setdefault(package, set()).add(source.align)
    return {package: re.compile("|".join([ALIGNERS[align][0].pattern for align in sorted(names)]
                                         + [DOC_FILES.pattern])) for package, names in aligns.items()}


@dataclass
class SourceResult:
    """What one source gave: its cleaned pairs, the count per rule that dropped a pair, its licence."""
    source: object
    pairs: list = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    licence: str = ""
    raw: int = 0
    error: str = ""


def package_licence(package, folder):
    """The distinct License: fields of the package's machine-readable copyright file, joined by ' / '."""
    doc = os.path.join(folder, "usr", "share", "doc", package)
    copyright_path = os.path.join(doc, "copyright")
    if os.path.exists(copyright_path):
        with open(copyright_path, encoding="utf-8", errors="replace") as handle:
            licences = list(dict.fromkeys(match.strip() for match in LICENSE_FIELD.findall(handle.read())))
        return " / ".join(licences) if licences else "see copyright (not machine-readable)"
    if os.path.exists(doc + ".link"):
        with open(doc + ".link", encoding="utf-8") as handle:
            return f"see {os.path.basename(handle.read().strip())}"
    return "unknown"


def clean_pairs(raw_pairs, dropped):
    """Cleaned sentence-level pairs from raw (German, English) texts; ``dropped`` counts the rules that dropped."""
    pairs = []
    for raw_german, raw_english in raw_pairs:
        for german_paragraph, english_paragraph in aligned_paragraphs(raw_german, raw_english):
            german, english, reason = clean_pair(german_paragraph, english_paragraph)
            if reason:
                dropped[reason] += 1
                continue
            sentences = aligned_sentences(german, english)
            for german_sentence, english_sentence in sentences:
                reason = drop_reason(german_sentence, english_sentence) if len(sentences) > 1 else None
                if reason:
                    dropped[reason] += 1
                else:
                    pairs.append((german_sentence, english_sentence))
    return pairs


def unpack_package(job):
    """Unpack the members of one package that match ``wanted``; job = (package, wanted, cache_dir, deb_dir).
    Returns (package, an error message or '')."""
    package, wanted, cache_dir, deb_dir = job
    deb = deb_path(package, deb_dir)
    if deb is None:
        return package, f"no .deb of {package} in {deb_dir}"
    try:
        unpack(deb, unpacked_dir(package, cache_dir), wanted)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        return package, str(error)
    return package, ""


def process_source(job):
    """Align and clean one unpacked source; job = (source, cache_dir, unpack patterns). Errors are returned, not
    raised."""
    source, cache_dir, patterns = job
    result = SourceResult(source)
    try:
        missing = [package for package in source.packages
                   if not is_unpacked(package, cache_dir, patterns[package])]
        if missing:
            raise FileNotFoundError(f"{' '.join(missing)} could not be fetched or unpacked")
        folders = [unpacked_dir(package, cache_dir) for package in source.packages]
        raw = ALIGNERS[source.align][1](folders)
        result.raw = len(raw)
        result.pairs = clean_pairs(raw, result.dropped)
        result.licence = package_licence(source.package, folders[0])
    except (OSError, RuntimeError, ValueError) as error:
        result.error = str(error)
    return result


def fetch_sources(patterns, cache_dir, deb_dir=None, progress_bar=None):
    """Download the packages not yet unpacked with their pattern (``patterns``: package -> regex) into
    cache_dir/debs, unless ``deb_dir`` holds them; returns (the folder holding the .debs, the packages apt-get could
    not fetch)."""
    if deb_dir:
        return deb_dir, []
    deb_dir = os.path.join(cache_dir, "debs")
    packages = [package for package, wanted in patterns.items() if not is_unpacked(package, cache_dir, wanted)]
    bar = progress_bar(total=len(packages), desc="download", unit="package") if progress_bar else None
    try:
        missing = download(packages, deb_dir, bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    return deb_dir, missing


def ding_heldout_keys(path=None):
    """Keys (lib.translation.corpus.held_out_keys) of Ding's valid and test sentences (the dictionary at ``path``,
    None: the installed one): kept out of the new text so that they stay held out."""
    splits = split_corpus(read_corpus(path, "ding", sentences_only=True, flag="--ding"))
    return held_out_keys(splits["valid"] + splits["test"])


def _ignore_interrupt():
    """Worker start: Ctrl-C goes to the main process, which ends the workers (no traceback from each of them); the
    termination signals end a worker at once, whatever handler the main process had when it forked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def run_jobs(function, work, jobs, description, unit, progress_bar=None):
    """[function(job) for job in work], in order, on ``jobs`` processes, with a progress bar. A worker that dies
    (e.g. killed by the out-of-memory killer) raises RuntimeError; Ctrl-C ends the workers with the build."""
    bar = progress_bar(total=len(work), desc=description, unit=unit) if progress_bar else None
    results = []
    try:
        if jobs > 1 and len(work) > 1:
            executor = ProcessPoolExecutor(jobs, initializer=_ignore_interrupt)
            try:
                for result in executor.map(function, work):
                    results.append(result)
                    if bar:
                        bar.update()
            except BrokenProcessPool:
                raise RuntimeError(f"a worker process of '{description}' died (killed, perhaps for lack of "
                                   f"memory); try --jobs 1, or free memory") from None
            finally:
                for process in list((executor._processes or {}).values()):  # ends workers still busy (Ctrl-C)
                    process.terminate()
                executor.shutdown(wait=True, cancel_futures=True)
        else:
            for job in work:
                results.append(function(job))
                if bar:
                    bar.update()
    finally:
        if bar:
            bar.close()
    return results


def process_sources(sources, cache_dir, deb_dir, jobs=2, progress_bar=None):
    """Unpack the packages not yet unpacked, then align and clean every source: SourceResults in the order of
    ``sources``, computed by ``jobs`` processes. Returns (results, {package: unpacking error})."""
    patterns = unpack_patterns(sources)
    work = [(package, wanted, cache_dir, deb_dir) for package, wanted in patterns.items()
            if not is_unpacked(package, cache_dir, wanted)]
    unpacked = run_jobs(unpack_package, work, jobs, "unpack", "package", progress_bar)
    errors = {package: error for package, error in unpacked if error}
    results = run_jobs(process_source, [(source, cache_dir, patterns) for source in sources], jobs,
                       "align and clean", "source", progress_bar)
    return results, errors


def merge(results, heldout_keys, everyday=(set(), set())):
    """One list of (german, english, kind, package) from the sources' pairs: exact duplicates once; a German with
    several Englishes keeps the most frequent (the first seen among equals); pairs whose German or English side is a
    held-out sentence (``heldout_keys``) or an everyday sentence (``everyday``, keys alike) removed. Returns (rows,
    counts of what was removed)."""
    counts, origin = Counter(), {}
    for result in results:
        for pair in result.pairs:
            counts[pair] += 1
            origin.setdefault(pair, (result.source.kind, result.source.package))
    best = {}
    for (german, english), count in counts.items():
        if german not in best or count > counts[(german, best[german])]:
            best[german] = english
    removed = Counter(duplicate=sum(counts.values()) - len(counts), other_english=len(counts) - len(best))
    rows = []
    for german, english in best.items():
        if is_held_out(german, english, heldout_keys):
            removed["held out by Ding"] += 1
            continue
        if is_held_out(german, english, everyday):
            removed["an everyday sentence"] += 1
            continue
        rows.append((german, english) + origin[(german, english)])
    return rows, removed


def write_tsv(rows, path):
    """Write rows atomically (lib.files.atomic_output): a reader never sees a partial file."""
    with atomic_output(path) as handle:
        for row in rows:
            handle.write("\t".join(row) + "\n")


def statistics(rows):
    """Dict key -> [pairs, full sentences, German tokens, English tokens] for every (kind) and (kind, package)."""
    table = {}
    for german, english, kind, package in rows:
        for key in ((kind,), (kind, package)):
            entry = table.setdefault(key, [0, 0, 0, 0])
            entry[0] += 1
            entry[1] += is_sentence(german)
            entry[2] += len(german.split())
            entry[3] += len(english.split())
    return table


def build(sources, cache_dir, out, jobs=2, deb_dir=None, ding_path=None, progress_bar=None):
    """The whole build; returns a report dict (rows written, per-source results, removals, missing packages).

    Raises RuntimeError, leaving ``out`` as it was, when no source was selected, a source failed (a package not
    fetched or unpacked, an aligner's error) or no pair is left."""
    if not sources:
        raise ValueError("no source selected: the list of sources is empty; nothing to build")
    heldout = ding_heldout_keys(ding_path)  # the dictionary is read before any download
    everyday = everyday_keys()
    deb_dir, missing = fetch_sources(unpack_patterns(sources), cache_dir, deb_dir, progress_bar)
    missing_set = set(missing)
    present = [source for source in sources if not missing_set.intersection(source.packages)]
    results, unpack_errors = process_sources(present, cache_dir, deb_dir, jobs, progress_bar)
    rows, removed = merge(results, heldout, everyday)
    report = {"rows": rows, "results": results, "removed": removed, "missing": missing,
              "unpack_errors": unpack_errors}
    failed = len(sources) - len(present) + sum(bool(result.error) for result in results)
    if failed or not rows:
        report["failed"] = failed
        return report
    write_tsv(rows, out)
    return report
