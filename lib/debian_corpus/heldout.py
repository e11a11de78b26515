"""Ding's held-out sentences (valid and test splits), kept out of the new text so that they stay held out.

Sides are compared as lib.translation.corpus.comparison_key gives them, with case, punctuation and spacing ignored: "Wie
bitte?" equals "wie bitte" (lib.translation.corpus.is_held_out)."""


def ding_heldout_keys(path=None):
    """The keys of Ding's valid and test sentences (the dictionary at ``path``, None: the installed one), as
    lib.translation.corpus.held_out_keys gives them."""
    from lib.translation.corpus import held_out_keys, read_corpus, split_corpus
    splits = split_corpus(read_corpus(path, "ding", sentences_only=True))
    return held_out_keys(splits["valid"] + splits["test"])
