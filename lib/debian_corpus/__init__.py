"""A German-English parallel corpus built from the translations that Debian's packages carry.

One concern per module: ``sources`` (the list of packages), ``fetch`` (apt-get download and unpacking), ``gettext``
(msgid / msgstr pairs from .mo and .po catalogues), ``cleaning`` (the rules that drop or repair a pair), ``language``
(is a side German or English), ``sentences`` (aligned paragraphs split into sentences), ``build`` (all of it: Ding's
valid and test sentences and the sentences of data/everyday.tsv kept out, the tsv), ``report`` (the table per source
and the summary). See docs/parallel-corpus.md.
"""
