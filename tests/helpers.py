"""Helpers shared by the tests (import them: ``from tests.helpers import tiny_config``): a tiny tab-separated corpus
and a tiny training run of lib/training/loop.py, a run that records each step's batch and loss, small random models
and translators, the exercise's parameters drawn by hand, a script's outcome as (exit code, printed), and
run_translation.py's main on a tiny translator; Debian packages with gettext catalogues for the corpus builder."""
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time

import polib
import pytest
import torch
import torch.nn as nn

SUBJECTS = [("Der Hund", "The dog"), ("Die Katze", "The cat"), ("Der Mann", "The man"), ("Die Frau", "The woman"),
            ("Das Kind", "The child"), ("Der Vogel", "The bird")]
VERBS = [("schläft", "sleeps"), ("läuft", "runs"), ("isst", "eats"), ("singt", "sings"), ("spielt", "plays"),
         ("lacht", "laughs")]
WHEN = [("", ""), (" heute", " today")]
# Dictionary-style entries (lower case, no final full stop): the corpus reader calls them phrases, not sentences.
PHRASES = [("der Hund", "the dog"), ("die Katze", "the cat"), ("schlafen", "to sleep"), ("laufen", "to run"),
           ("essen", "to eat"), ("singen", "to sing"), ("spielen", "to play"), ("lachen", "to laugh"),
           ("heute", "today"), ("das Kind", "the child"), ("der Vogel", "the bird"), ("die Frau", "the woman")]


def write_corpus(path, phrases=False):
    """72 made-up German<TAB>English sentence pairs (67 train, 2 valid, 3 test by the corpus's hash split), then,
    with ``phrases``, the 12 PHRASES (all training phrases)."""
    with open(path, "w", encoding="utf-8") as file:
        for german_subject, english_subject in SUBJECTS:
            for german_verb, english_verb in VERBS:
                for german_when, english_when in WHEN:
                    file.write(f"{german_subject} {german_verb}{german_when}.\t"
                               f"{english_subject} {english_verb}{english_when}.\n")
        for german, english in PHRASES if phrases else ():
            file.write(f"{german}\t{english}\n")
    return str(path)


def tiny_config(tmp_path, phrases=False, **changes):
    """A tiny run (7,747 parameters, 8 steps, validated at 4 and 8); its 7 batches per epoch give each of 2
    processes 3 (one left out). ``phrases``: the corpus also holds PHRASES. ``changes``: other TrainConfig values."""
    from lib.training.config import TrainConfig
    name = "corpus-phrases.tsv" if phrases else "corpus.tsv"
    tmp_path.mkdir(parents=True, exist_ok=True)
    values = dict(corpus=write_corpus(tmp_path / name, phrases), corpus_format="tsv", out_dir=str(tmp_path / "run"),
                  de_vocab_size=60, en_vocab_size=60, max_len=16, embed_dim=16, enc_layers=1, dec_layers=1,
                  num_heads=2, dropout=0.0, batch_tokens=270, lr=3e-3, warmup_steps=2, sentence_repeats=2,
                  phrases_per_epoch=0, max_steps=8, eval_every=4, eval_sentences=2, seed=0, device="cpu")
    values.update(changes)
    return TrainConfig(**values)


def train_recording(config, resume=False, overrides=None, action=None, steps=None):
    """Train ``config`` (in this process) and record every training step's batch tensors and loss.

    ``action(step)``, if given, is called at the start of each training step's forward pass (1-based step number
    of this call), e.g. to raise KeyboardInterrupt there. Returns (records, steps): steps is a list of dicts with
    "source", "decoder_input", "decoder_target" (CPU tensors) and "loss" (float), one per step; pass a list as
    ``steps`` to keep them when training raises.
    """
    from lib.training import loop
    original = loop.translation_loss
    steps = [] if steps is None else steps

    def recording(model, source, decoder_input, decoder_target, label_smoothing=None):
        if label_smoothing is None:  # validation
            return original(model, source, decoder_input, decoder_target)
        if action is not None:
            action(len(steps) + 1)
        loss, count = original(model, source, decoder_input, decoder_target, label_smoothing=label_smoothing)
        steps.append({"source": source.cpu(), "decoder_input": decoder_input.cpu(),
                      "decoder_target": decoder_target.cpu(), "loss": loss.item()})
        return loss, count
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "translation_loss", recording)
        records = loop.train(config, resume=resume, progress=False, overrides=overrides)
    return records, steps


def small_cnn():
    """A random 5-class CNN for (batch, 3, 6, 6) images, small enough for exact gradient checks."""
    from torch import nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2), nn.Tanh(),
                         nn.Flatten(), nn.Linear(4 * 2 * 2, 5))


def random_translator(pairs, vocab_size, std=None, seed=0, **shape):
    """A Translator with vocabularies of ``vocab_size`` pieces trained on ``pairs`` ((german, english) tuples) and a
    random TransformerModel of ``shape`` (seeded by ``seed``). ``std``: weight matrices redrawn from N(0, std), so
    that different sentences get different translations. As in a trained model, padding is never predicted."""
    from lib.translation.tokenizer import PAD, Vocabulary
    from lib.transformer import TransformerModel
    from lib.translation.translator import Translator
    de_vocab = Vocabulary.train([german for german, _ in pairs], vocab_size)
    en_vocab = Vocabulary.train([english for _, english in pairs], vocab_size)
    torch.manual_seed(seed)
    model = TransformerModel(len(en_vocab), len(de_vocab), **shape)
    with torch.no_grad():
        if std:
            for parameter in model.parameters():
                if parameter.dim() >= 2:
                    parameter.normal_(0.0, std)
        model.decoder_final_dense.bias[PAD] = -50.0
    return Translator(model.eval(), de_vocab, en_vocab)


def write_tsv(path, pairs):
    """Write (german, english) ``pairs`` to ``path`` as a tab-separated corpus."""
    path.write_text("".join(f"{german}\t{english}\n" for german, english in pairs), encoding="utf-8")


def corpus_and_translator(folder, pairs, vocab_size, **shape):
    """A tab-separated corpus of ``pairs`` and a saved ``random_translator`` (weights drawn with std 0.6, so that
    sentences get different translations) in ``folder``: (corpus path, checkpoint path, translator)."""
    corpus, checkpoint = folder / "corpus.tsv", folder / "translator.pth"
    write_tsv(corpus, pairs)
    translator = random_translator(pairs, vocab_size, std=0.6, **shape)
    translator.save(str(checkpoint))
    return str(corpus), str(checkpoint), translator


# ---- the Transformer's parameters, created by hand in the exercise's order (docs/interface.md) ----


def expected_attention_state(prefix, embed_dim):
    """A MultiHeadAttention's parameters as the exercise creates them (draws from the global RNG)."""
    state = {f"{prefix}.{name}": torch.randn(embed_dim, embed_dim) * 1e-2
             for name in ("W_query", "W_key", "W_value", "W_output")}
    norm = nn.LayerNorm(embed_dim)
    state.update({f"{prefix}.layer_norm.{name}": value for name, value in norm.state_dict().items()})
    return state


def expected_module_list(prefix, count, make):
    """The state of ``count`` modules made by ``make()`` in turn, keyed like an nn.ModuleList named ``prefix``."""
    state = {}
    for i in range(count):
        state.update({f"{prefix}.{i}.{name}": value for name, value in make().state_dict().items()})
    return state


# ---- running a script's main as its ``if __name__ == "__main__"`` does (tests of bad input) -----------------------

def cli_outcome(parse_args, main, argv, capsys):
    """Run ``main(parse_args(argv))`` through lib.cli.run_main, as the scripts end. Returns (exit code, everything
    printed to stdout and stderr, with the message of a SystemExit)."""
    from lib.cli import run_main
    code, message = 0, ""
    try:
        run_main(main, parse_args(argv))
    except SystemExit as exit:
        code, message = (exit.code, "") if isinstance(exit.code, int) or exit.code is None else (1, str(exit.code))
    captured = capsys.readouterr()
    return code or 0, captured.out + captured.err + message


# ---- run_translation.py on a tiny random translator (tests of the script and of lib/translation/commands.py) -------

NOUNS = [("Haus", "house"), ("Auto", "car"), ("Buch", "book"), ("Boot", "boat"), ("Bild", "picture"),
         ("Zimmer", "room"), ("Fenster", "window"), ("Glas", "glass"), ("Dach", "roof"), ("Bett", "bed")]
COLOURS = [("rot", "red"), ("blau", "blue"), ("alt", "old"), ("neu", "new"), ("klein", "small"), ("groß", "big"),
           ("sauber", "clean"), ("teuer", "expensive"), ("billig", "cheap"), ("leer", "empty"), ("warm", "warm"),
           ("kalt", "cold"), ("hell", "bright"), ("dunkel", "dark"), ("schön", "beautiful")]


def run_translation_with(setting, *flags):
    """run_translation.main on ``flags`` with the checkpoint and tsv corpus of ``setting`` ((corpus, checkpoint,
    translator)), figures not shown."""
    import run_translation
    corpus, checkpoint, _ = setting
    run_translation.main(run_translation.parse_args(["--checkpoint", checkpoint, "--corpus", corpus, "--corpus-format",
                                                     "tsv", "--no-show", *flags]))


# ---- Debian packages made by the tests (the corpus builder's inputs) ----------------------------------------------

KEEP = ("Das Haus ist sehr groß.", "The house is very big.")


def write_catalogue(folder):
    """A German catalogue with a plain entry, a plural, a context, a fuzzy, an obsolete, an untranslated and a
    translator-credit entry; saved as .po and compiled to .mo. Returns (po path, mo path)."""
    catalogue = polib.POFile()
    catalogue.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
    catalogue.append(polib.POEntry(msgid=KEEP[1], msgstr=KEEP[0]))
    catalogue.append(polib.POEntry(msgid="One red apple", msgid_plural="Many red apples",
                                   msgstr_plural={0: "Ein roter Apfel", 1: "Viele rote Äpfel"}))
    catalogue.append(polib.POEntry(msgctxt="menu", msgid="Open the door", msgstr="Öffne die Tür"))
    catalogue.append(polib.POEntry(msgid="A fuzzy guess", msgstr="Eine unscharfe Vermutung", flags=["fuzzy"]))
    catalogue.append(polib.POEntry(msgid="Gone for good", msgstr="Für immer fort", obsolete=True))
    catalogue.append(polib.POEntry(msgid="Not translated", msgstr=""))
    catalogue.append(polib.POEntry(msgid="Your names", msgstr="Erika Mustermann"))
    os.makedirs(folder, exist_ok=True)
    po_path, mo_path = os.path.join(folder, "demo.po"), os.path.join(folder, "demo.mo")
    catalogue.save(po_path)
    catalogue.save_as_mofile(mo_path)
    return po_path, mo_path


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2024 Someone
License: GPL-2+
 The licence text.

Files: data/*
Copyright: 2024 Someone
License: CC-BY-SA-4.0
"""


def build_deb(folder, package, catalogues):
    """A .deb of ``package`` built with dpkg-deb holding the catalogues (dict language -> .mo path), a copyright
    file and an unrelated file; returns its path."""
    root = tempfile.mkdtemp(prefix=package + "-root-")
    os.makedirs(os.path.join(root, "DEBIAN"))
    with open(os.path.join(root, "DEBIAN", "control"), "w", encoding="utf-8") as handle:
        handle.write(f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
                     "Description: test package\n")
    for language, mo_path in catalogues.items():
        target = os.path.join(root, "usr", "share", "locale", language, "LC_MESSAGES", "demo.mo")
        os.makedirs(os.path.dirname(target))
        with open(mo_path, "rb") as source, open(target, "wb") as handle:
            handle.write(source.read())
    doc = os.path.join(root, "usr", "share", "doc", package)
    os.makedirs(doc)
    with open(os.path.join(doc, "copyright"), "w", encoding="utf-8") as handle:
        handle.write(COPYRIGHT)
    os.makedirs(os.path.join(root, "usr", "bin"))
    with open(os.path.join(root, "usr", "bin", "demo"), "w", encoding="utf-8") as handle:
        handle.write("#!/bin/sh\n")
    deb = os.path.join(folder, f"{package}_1.0_all.deb")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", root, deb], check=True, capture_output=True)
    shutil.rmtree(root)
    return deb


def stop_by(signum):
    """A function that sends ``signum`` to this process, as Ctrl-C or kill would while it works."""
    def stop(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the signal arrives first
    return stop


def _scripts():
    """Every script a user runs: the Python files at the repository's root, in tools/ and in benchmarks/ (without
    .py), so that a new one is swept by the tests of every script."""
    import glob
    from lib.files import REPOSITORY
    paths = [path for pattern in ("*.py", "tools/*.py", "benchmarks/*.py")
             for path in glob.glob(os.path.join(REPOSITORY, pattern))]
    return sorted(os.path.relpath(path, REPOSITORY).replace(os.sep, "/").removesuffix(".py") for path in paths)


SCRIPTS = _scripts()


def load_script(script):
    """The module of ``script`` (a path below the repository without .py), loaded from its file: a package of
    another project may own the name benchmarks."""
    from lib.files import REPOSITORY
    spec = importlib.util.spec_from_file_location(script.replace("/", "_"), os.path.join(REPOSITORY, script + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_parser(script):
    """The argument parser of ``script`` (see :func:`load_script`)."""
    return load_script(script).build_parser()


def flag_actions(parser):
    """Every optional flag's argparse action (argparse offers no public list of a parser's flags)."""
    return [action for group in parser._action_groups for action in group._group_actions if action.option_strings]
