"""The table per source (Markdown, by kind) and per package (tsv) that accompany the corpus tsv."""
import os

from lib.files import atomic_output
from lib.debian_corpus.build import statistics


def table_paths(out):
    """(Markdown table by kind, tsv table by package) beside the corpus at ``out``."""
    stem = os.path.splitext(out)[0]
    return stem + ".sources.md", stem + ".packages.tsv"


def markdown_table(report):
    """The Markdown table by kind: pairs, full sentences, tokens, packages that gave pairs, their licences."""
    stats = statistics(report["rows"])
    licences = {}  # kind -> {package: licence}, each package that gave pairs once
    for result in report["results"]:
        if (result.source.kind, result.source.package) in stats:
            licences.setdefault(result.source.kind, {})[result.source.package] = result.licence
    lines = ["| source | pairs | full sentences | German / English tokens | packages that gave pairs | most frequent "
             "licences |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    total = [0, 0, 0, 0]
    for key in sorted(key for key in stats if len(key) == 1):
        pairs, sentences, german, english = stats[key]
        total = [a + b for a, b in zip(total, stats[key])]
        counts = {}
        for licence in licences.get(key[0], {}).values():
            for name in licence.split(" / "):
                counts[name] = counts.get(name, 0) + 1
        common = ", ".join(name for name, _ in sorted(counts.items(), key=lambda item: -item[1])[:5])
        lines.append(f"| {key[0]} | {pairs:,} | {sentences:,} | {german:,} / {english:,} | "
                     f"{len(licences.get(key[0], {}))} | {common} |")
    lines.append(f"| **all** | **{total[0]:,}** | **{total[1]:,}** | **{total[2]:,} / {total[3]:,}** | | |")
    return "\n".join(lines) + "\n"


def write_tables(report, out):
    """Write the Markdown table by kind and the tsv by package (with licence) beside ``out``."""
    markdown_path, packages_path = table_paths(out)
    stats = statistics(report["rows"])
    with atomic_output(markdown_path) as handle:
        handle.write(markdown_table(report))
    with atomic_output(packages_path) as handle:
        handle.write("package\tsource\tpairs\tfull_sentences\tgerman_tokens\tenglish_tokens\traw_entries\tlicence\n")
        packages = {}  # (kind, package) -> [raw entries of all its sources, licence or error]
        for result in report["results"]:
            entry = packages.setdefault((result.source.kind, result.source.package), [0, ""])
            entry[0] += result.raw
            entry[1] = entry[1] or result.licence or result.error
        for (kind, package), (raw, licence) in packages.items():
            values = stats.get((kind, package), [0, 0, 0, 0])
            handle.write("\t".join([package, kind, *map(str, values), str(raw), licence]) + "\n")


def summary_lines(report, out):
    """What the build did, for the terminal."""
    dropped = {}
    for result in report["results"]:
        for reason, count in result.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
    errors = [result for result in report["results"] if result.error]
    lines = [markdown_table(report),
             f"kept {out} as it was: {len(report['rows']):,} pairs were built, but not written, since a source "
             "failed or no pair was left" if "failed" in report else
             f"wrote {len(report['rows']):,} pairs to {out}; tables: {', '.join(table_paths(out))}",
             "dropped by rule: " + ", ".join(f"{reason} {count:,}" for reason, count in
                                             sorted(dropped.items(), key=lambda item: -item[1])),
             "removed after cleaning: " + ", ".join(
                 f"{reason} {count:,}" for reason, count in report["removed"].items())]
    if report["missing"]:
        lines.append(f"apt-get could not fetch {len(report['missing'])} packages: {' '.join(report['missing'])} "
                     "(if apt's package lists are missing or old, run 'sudo apt-get update' and build again; a "
                     "package no longer in the archive can be removed from --sources)")
    if report.get("unpack_errors"):
        lines.append(f"{len(report['unpack_errors'])} packages could not be unpacked: " + "; ".join(
            f"{package}: {error}" for package, error in list(report["unpack_errors"].items())[:10]))
    if errors:
        lines.append(f"{len(errors)} sources failed: " + "; ".join(
            f"{result.source.package}: {result.error}" for result in errors[:10]))
    return lines
