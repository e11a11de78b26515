"""The training data of a translator: the corpus read, split and tokenized (:func:`prepare_data`), and the batches
of each epoch (:func:`epoch_batches`), shared between processes (:func:`rank_batches`) and collated into tensors with
word dropout (:func:`training_batch`)."""
import os
import random
from dataclasses import dataclass, field

import torch

from lib.files import check_input
from lib.training.config import dev_corpus_path, extra_source_weights
from lib.translation.corpus import (EVERYDAY_PATH, MISSING_EXTRA, check_corpus, held_out_keys, read_corpus,
                                    read_extra_corpus, read_tsv, split_corpus, without_everyday, without_held_out)
from lib.translation.noising import word_dropout
from lib.translation.tokenizer import END, PAD, START, UNK, Vocabulary

# The German "phrase" tag: <START>, which every vocabulary has and no German source otherwise holds (sources carry no
# start token), so tagged runs need no new vocabulary and old checkpoints can resume with the tag.
PHRASE_TAG = START
# The domain tag of --extra-corpus text: <END>, which no German source otherwise holds either.
EXTRA_TAG = END
# Tokens word dropout never replaces: padding, and the start / end tokens (and so the phrase and extra tags).
PROTECTED_IDS = (PAD, START, END)
# How many --extra-corpus pairs, at most, the vocabularies are trained on beside the corpus.
VOCABULARY_EXTRA_PAIRS = 200000


@dataclass
class PreparedData:
    """Vocabularies and tokenized pairs: sentences (always used), phrases (sampled each epoch; their German behind
    PHRASE_TAG when ``config.phrase_tag``) and extra pairs (``config.extra_corpus``, sampled each epoch; behind
    EXTRA_TAG when ``config.extra_tag``; ``train_extra_sources`` names the source of each, for the weights of
    ``config.extra_sources``) for training, the validation pairs (for the validation loss), and the Pairs of the
    second dev set (``config.dev_corpus``; none without one), translated at each validation."""
    de_vocab: Vocabulary
    en_vocab: Vocabulary
    splits: dict
    train_sentences: list
    train_phrases: list
    valid_examples: list
    train_extra: list = field(default_factory=list)
    dev_pairs: list = field(default_factory=list)
    train_extra_sources: list = field(default_factory=list)


def _fits(example, max_len):
    return 0 < len(example[0]) <= max_len and 0 < len(example[1]) <= max_len


def check_training_inputs(config, resuming=False):
    """Before any work: the files a run reads (--corpus, --extra-corpus, and --init-from unless ``resuming``: the
    weights then come from last.pth), each through lib.files.check_input with where such a file comes from;
    --extra-sources without --extra-corpus is an error, not ignored."""
    from lib.translation.translator import TRANSLATOR_HINT
    if config.extra_sources and not config.extra_corpus:
        raise ValueError(f"--extra-sources {config.extra_sources} chooses among the sources of --extra-corpus, but no "
                         "--extra-corpus is given: add --extra-corpus FILE, or leave --extra-sources out")
    check_corpus(config.corpus, config.corpus_format)
    if dev_corpus_path(config) is not None:
        check_input(dev_corpus_path(config), "--dev-corpus", seekable=True,
                    hint="give a tsv of german<TAB>english lines, or --dev-corpus none")
    if config.extra_corpus:
        check_input(config.extra_corpus, "--extra-corpus", seekable=True, hint=MISSING_EXTRA)
    if config.init_from and not resuming:
        check_input(config.init_from, "--init-from", seekable=True, hint=TRANSLATOR_HINT)


def weighted_draw(examples, sources, weights, wanted, rng):
    """About ``wanted`` of ``examples``, each source's share in proportion to its weight times its number of
    examples (``sources[i]`` is the source of ``examples[i]``, ``weights`` maps a source to its weight, 1 if absent):
    a share larger than its source is every example of it repeated, then a sample of the rest. Returns the drawn
    examples, source by source in sorted order."""
    groups = {}
    for example, source in zip(examples, sources):
        groups.setdefault(source, []).append(example)
    mass = {source: weights.get(source, 1.0) * len(group) for source, group in groups.items()}
    total = sum(mass.values())
    drawn = []
    for source in sorted(groups):
        whole, rest = divmod(round(wanted * mass[source] / total), len(groups[source]))
        drawn += groups[source] * whole + rng.sample(groups[source], rest)
    return drawn


def read_extra(config, splits, dev_keys=None):
    """The (Pair, source) tuples of ``config.extra_corpus`` (none without one), restricted to
    ``config.extra_sources`` and without the held-out sentences of ``splits`` (and of a dev set: ``dev_keys``)."""
    if not config.extra_corpus:
        return []
    sources = list(extra_source_weights(config.extra_sources))
    pairs = without_held_out(read_extra_corpus(config.extra_corpus, sources), splits, dev_keys)
    if not pairs:
        raise ValueError(f"--extra-corpus {config.extra_corpus} leaves no pair to train on (its lines are empty, "
                         "skipped or held out): give a tsv of german<TAB>english<TAB>source lines, e.g. "
                         ".corpus/debian-de-en.tsv")
    return pairs


def prepare_data(config, vocabularies=None):
    """Read and split the corpus (and ``config.extra_corpus``), train (or reuse) the vocabularies, tokenize the
    training pairs.

    The vocabularies are trained on the training sentences, up to 100,000 training phrases and up to
    VOCABULARY_EXTRA_PAIRS extra pairs: one per language, or with ``config.joint_vocab_size`` one on both languages'
    texts, which is then both de_vocab and en_vocab."""
    splits = split_corpus(read_corpus(config.corpus, config.corpus_format))
    training = without_everyday(splits["train"])  # the everyday dev set is never trained on
    dev_path = dev_corpus_path(config)
    dev_pairs = read_tsv(dev_path, "--dev-corpus") if dev_path else []
    dev_keys = None  # a dev set of one's own is never trained on either (the everyday set's sentences are out already)
    if dev_path and os.path.realpath(dev_path) != os.path.realpath(EVERYDAY_PATH):
        dev_keys = held_out_keys(dev_pairs)
        training = without_everyday(training, dev_keys)
    extra_with_sources = read_extra(config, splits, dev_keys)
    extra = [pair for pair, _ in extra_with_sources]
    sentences = [pair for pair in training if pair.sentence]
    phrases = [pair for pair in training if not pair.sentence]
    if vocabularies is None:
        rng = random.Random(config.seed)
        sample = rng.sample(phrases, min(len(phrases), 100000))
        if extra:
            sample += rng.sample(extra, min(len(extra), VOCABULARY_EXTRA_PAIRS))
        german, english = [pair.german for pair in sentences + sample], [pair.english for pair in sentences + sample]
        if config.joint_vocab_size:
            de_vocab = en_vocab = Vocabulary.train_joint(german, english, config.joint_vocab_size)
        else:
            de_vocab = Vocabulary.train(german, config.de_vocab_size)
            en_vocab = Vocabulary.train(english, config.en_vocab_size)
    else:
        de_vocab, en_vocab = vocabularies

    def tokenize(pairs, tag=None, labels=None):
        """The (german ids, english ids) of the pairs that fit max_len; with ``labels`` (one per pair), also the
        labels of those kept."""
        # a text longer than max_len tokens can cover would be dropped by _fits: dropped before it is encoded
        kept = [index for index, pair in enumerate(pairs) if de_vocab.clip(pair.german, config.max_len) is pair.german
                and en_vocab.clip(pair.english, config.max_len) is pair.english]
        german = de_vocab.encode([pairs[index].german for index in kept])
        if tag is not None:
            german = [[tag] + ids for ids in german]
        examples = zip(german, en_vocab.encode([pairs[index].english for index in kept]), kept)
        fitting = [(source, target, index) for source, target, index in examples
                   if _fits((source, target), config.max_len)]
        tokenized = [(source, target) for source, target, _ in fitting]
        return tokenized if labels is None else (tokenized, [labels[index] for _, _, index in fitting])
    train_extra, extra_sources = tokenize(extra, EXTRA_TAG if config.extra_tag else None,
                                          labels=[source for _, source in extra_with_sources])
    return PreparedData(de_vocab, en_vocab, splits, tokenize(sentences),
                        tokenize(phrases, PHRASE_TAG if config.phrase_tag else None), tokenize(splits["valid"]),
                        train_extra, dev_pairs, extra_sources)


def epoch_batches(data, config, epoch):
    """The batches of one epoch, the same on every run and rank: sentences repeated ``sentence_repeats`` times plus
    ``phrases_per_epoch`` phrases and ``extra_per_epoch`` extra pairs drawn for this epoch (by the weights of
    ``extra_sources`` where it gives any but 1: :func:`weighted_draw`), sorted by length into
    batches of about ``batch_tokens`` padded tokens per side, in a shuffled order. Returns a list of lists of
    (german ids, english ids)."""
    rng = random.Random(config.seed * 100003 + epoch)
    examples = data.train_sentences * config.sentence_repeats
    examples += rng.sample(data.train_phrases, min(config.phrases_per_epoch, len(data.train_phrases)))
    if data.train_extra:
        wanted = config.extra_per_epoch or len(data.train_extra)
        weights = extra_source_weights(config.extra_sources)
        if any(weight != 1 for weight in weights.values()):
            examples += weighted_draw(data.train_extra, data.train_extra_sources, weights, wanted, rng)
        else:
            examples += rng.sample(data.train_extra, min(wanted, len(data.train_extra)))
    keys = [(len(target), len(source), rng.random()) for source, target in examples]
    order = sorted(range(len(examples)), key=keys.__getitem__)
    batches, batch, longest = [], [], 0
    for index in order:
        source, target = examples[index]
        length = max(len(source), len(target) + 1)
        if batch and max(longest, length) * (len(batch) + 1) > config.batch_tokens:
            batches.append(batch)
            batch, longest = [], 0
        batch.append(examples[index])
        longest = max(longest, length)
    if batch:
        batches.append(batch)
    rng.shuffle(batches)
    return batches


def rank_batches(data, config, epoch, place):
    """This process's share of the epoch's batches: every world_size-th one, the same count on every rank."""
    batches = epoch_batches(data, config, epoch)
    per_rank = len(batches) // place.world_size
    if per_rank == 0:  # else the loop would run through empty epochs forever
        raise ValueError(f"epoch {epoch} has {len(batches)} training batches, fewer than the {place.world_size} "
                         "process(es): use a bigger corpus, a smaller --batch-tokens, a larger --max-len or "
                         "fewer processes")
    return batches[place.rank::place.world_size][:per_rank]


def collate(batch, device):
    """List of (german ids, english ids) -> (source (B, S), decoder input (B, T + 1), decoder target (B, T + 1))."""
    source_length = max(len(source) for source, _ in batch)
    target_length = max(len(target) for _, target in batch) + 1
    source = torch.full((len(batch), source_length), PAD, dtype=torch.long)
    decoder_input = torch.full((len(batch), target_length), PAD, dtype=torch.long)
    decoder_target = torch.full((len(batch), target_length), PAD, dtype=torch.long)
    for row, (german, english) in enumerate(batch):
        source[row, :len(german)] = torch.tensor(german)
        decoder_input[row, :len(english) + 1] = torch.tensor([START] + english)
        decoder_target[row, :len(english) + 1] = torch.tensor(english + [END])
    return source.to(device), decoder_input.to(device), decoder_target.to(device)


def noise_seed(config, rank, step):
    """The seed of step ``step``'s word dropout on ``rank``: a function of the run's seed alone, so resuming at any
    step draws the same noise as the uninterrupted run."""
    return ((config.seed * 1_000_003 + rank) * 1_000_003 + step) % 2**63


def training_batch(batch, config, device, rank=0, step=1):
    """collate() plus word dropout (training only): each source token and decoder-input token that is not in
    PROTECTED_IDS becomes UNK with probability ``source_word_dropout`` / ``target_word_dropout``; the decoder
    target (the labels) is never changed. Returns (source (B, S), decoder input (B, T + 1), decoder target)."""
    if not (config.source_word_dropout or config.target_word_dropout):
        return collate(batch, device)
    source, decoder_input, decoder_target = collate(batch, "cpu")
    generator = torch.Generator().manual_seed(noise_seed(config, rank, step))
    if config.source_word_dropout:
        source = word_dropout(source, config.source_word_dropout, UNK, PROTECTED_IDS, generator)
    if config.target_word_dropout:
        decoder_input = word_dropout(decoder_input, config.target_word_dropout, UNK, PROTECTED_IDS, generator)
    return source.to(device), decoder_input.to(device), decoder_target.to(device)
