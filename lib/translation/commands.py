"""The commands of run_translation.py, one function each: train, test one corpus line, translate a text, a file or
standard input, evaluate, export, draw a run's curves; and the checks they make before any work.

``args`` is the script's parsed arguments (argparse.Namespace, every base flag set; a TrainConfig flag present only
when given). Each command prints its result; bad input raises ValueError / OSError with a one-line message.
"""
import contextlib
import os
import sys
import warnings
from dataclasses import fields

from lib.cli import KEPT, NOTHING_WRITTEN, STOPS_DEFERRED, discard_stdout, set_threads
from lib.files import (arrives_over_time, check_input, check_output, check_output_folder, is_stdin, open_text,
                       same_file)
from lib.training.config import TrainConfig, native_bfloat16

# Translating (--input, --eval) uses --threads N as N batches decoded at once, each on one torch thread: torch's own
# threads split every operation and wait for the slowest, so beside a job that holds a core two of them decode
# several times slower than one; separate batches never wait for each other (benchmarks/translate_file_speed.py).
MOST_DEFAULT_THREADS = 2
NO_LINES = "--input {} holds no lines: nothing to translate; give one German sentence per line"
# What --input must be (lib.files.open_text).
INPUT_TEXT = "UTF-8 text (plain or gzip), one German sentence a line"
# Passed to training as overrides whether given or not (as the run's own settings of devices and folder).
ALWAYS_OVERRIDDEN = ("device", "amp", "compile", "out_dir")
# TrainConfig fields that are the script's own flags (set whether given or not), not training settings.
SCRIPT_FLAGS = ("device", "amp", "compile")
# The TrainConfig fields that only --train uses (all but the corpus and the script's own flags).
TRAINING_SETTINGS = tuple(field.name for field in fields(TrainConfig)
                          if field.name not in ("corpus", "corpus_format") + SCRIPT_FLAGS)


def default_threads():
    """The CPU threads used for translating unless --threads is given: 2, or 1 on a one-core machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MOST_DEFAULT_THREADS, cores))


def given_settings(args):
    """The TrainConfig fields the user gave (by a flag, abbreviated or not, or in parse_args' list), name -> value."""
    names = {field.name for field in fields(TrainConfig)} - set(SCRIPT_FLAGS)
    return {name: getattr(args, name) for name in sorted(names) if hasattr(args, name)}


def setting(args, name):
    """A TrainConfig field's value: as given, else TrainConfig's default."""
    return getattr(args, name, getattr(TrainConfig, name))


def check_device(device):
    """Refuse --device cuda[:N] where there is no such GPU (None and cpu pass)."""
    if device and device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA GPU is available here; leave --device out or use --device "
                             "cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")


def train(args):
    """Train (or --resume) with a TrainConfig of TrainConfig's defaults and the flags given; those given, and the
    devices and --out-dir, are passed as ``overrides`` (what a resumed run is asked to change). --amp unset: bfloat16
    autocast where the device computes it natively. Ctrl-C, SIGTERM and SIGHUP end the script with 128 + the signal's
    number, as a shell reports them."""
    import torch
    from lib.training import loop
    given = given_settings(args)
    separate = [f"--{name.replace('_', '-')}" for name in ("de_vocab_size", "en_vocab_size") if name in given]
    if given.get("joint_vocab_size") is not None and separate:
        raise ValueError(f"--joint-vocab-size trains one vocabulary for both languages, {' and '.join(separate)} "
                         "one per language: give either --joint-vocab-size or the per-language sizes")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    amp = native_bfloat16(device) if args.amp is None else args.amp
    config = TrainConfig(**dict(given, device=device, amp=amp, compile=args.compile))
    overrides = dict(given)
    overrides.update({name: getattr(config, name) for name in ALWAYS_OVERRIDDEN})
    if args.resume and args.force:
        raise ValueError("--resume continues the run in --out-dir, --force starts it over: give one of them")
    if args.resume:
        loop.check_resumable(config.out_dir)  # before the folder check, which would make a missing folder
    check_output_folder(config.out_dir, "--out-dir")
    set_threads(args.threads)
    try:
        records = loop.train(config, resume=args.resume, progress=not args.no_progress, overrides=overrides,
                             force=args.force)
    except loop.TrainingInterrupted as error:
        print(str(error) or "interrupted", file=sys.stderr)
        sys.exit(128 + error.signum)
    if records and int(os.environ.get("RANK", "0")) == 0:
        best = max(records, key=lambda record: record["valid_bleu"])
        print(f"Best validation BLEU {best['valid_bleu']} chrF {best['valid_chrf']} at step {best['step']}; "
              f"translator in {os.path.join(config.out_dir, 'best.pth')}")


def curves(args):
    """Draw the loss, BLEU and chrF curves of the run in --out-dir to --figures-dir."""
    from lib.plot import finish_figure, show_training_curves
    from lib.training.log import CURVE_NUMBERS, read_training_log
    out_dir = setting(args, "out_dir")
    records = read_training_log(out_dir, required=CURVE_NUMBERS)
    check_output_folder(args.figures_dir, "--figures-dir")
    figure = show_training_curves(records, title=f"Training run in {out_dir}")
    path = finish_figure(figure, os.path.join(args.figures_dir, "translation_training.png"), show=not args.no_show)
    print(f"Curves of {len(records)} validations saved to {path}")


def describe_decoding(beam, length_penalty):
    """'greedy' or 'beam 4, length penalty 1.2'."""
    return "greedy" if beam == 1 else f"beam {beam}, length penalty {length_penalty:g}"


def own_corpus(args):
    """Whether --corpus names a file other than the installed dictionary (the training corpus by default)."""
    from lib.translation.corpus import DING_PATH
    return hasattr(args, "corpus") and os.path.realpath(args.corpus) != os.path.realpath(DING_PATH)


def check_translation_request(args):
    """The checks of a translating command that need no model: paths, --export's target, --split, --input. Sets
    the default --html path. Returns the number of lines of an --input FILE (else None)."""
    from lib.translation.translator import TRANSLATOR_HINT
    models = args.average or [args.checkpoint]
    for path in models:
        check_input(path, "--average" if args.average else "--checkpoint", seekable=True, hint=TRANSLATOR_HINT)
    twice = sorted({path for path in models if sum(same_file(path, other) for other in models) > 1})
    if twice:
        raise ValueError(f"--average lists {', '.join(twice)} more than once, so it would weigh more than the others; "
                         "give each checkpoint once")
    if args.compare is not None:
        check_input(args.compare, "--compare", seekable=True)
        if not args.average and same_file(args.compare, args.checkpoint):
            raise ValueError(f"--compare {args.compare} is the --checkpoint itself, so the comparison would show no "
                             "difference: give the translator to compare against (e.g. --checkpoint "
                             "results/translation/best.pth --compare data/translator.pth)")
    if args.export is not None:
        check_output(args.export, "--export", force=args.force, inputs=models + [args.compare])
    if args.eval and (args.split == "train" or args.split == "all" and not own_corpus(args)):
        raise ValueError(f"--eval scores held-out sentences: --split valid or test, not {args.split} (whose pairs "
                         "the model trained on); --split all only with a --corpus of your own, e.g. --corpus "
                         "data/everyday.tsv --corpus-format tsv")
    if (args.test or args.eval) and hasattr(args, "corpus"):
        from lib.translation.corpus import check_corpus
        check_corpus(args.corpus, setting(args, "corpus_format"), seekable=True)
    if args.text is not None and not args.text.strip():
        raise ValueError('--text is empty: give a German sentence, e.g. --text "Ich habe heute keine Zeit."')
    if args.html is not None:
        default = f"attention_explorer_line{args.line}.html" if args.test else "attention_explorer_text.html"
        if args.html:  # a file the user named: kept unless --force
            check_output(args.html, "--html", force=args.force, inputs=models)
        else:  # the script's own output in --figures-dir, replaced by each run
            args.html = os.path.join(args.figures_dir, default)
            check_output(args.html, "--html", inputs=models, default=args.html)
    if (args.test or args.text is not None) and args.plot:
        check_output_folder(args.figures_dir, "--figures-dir")
    if args.input is None:
        return None
    if is_stdin(args.input):
        args.input = "-"
        if sys.stdin is None:
            raise ValueError("--input -: standard input is closed; pipe text into it (echo 'Guten Morgen.' | python "
                             "run_translation.py --input -) or give --input FILE")
        return None
    check_input(args.input, "--input")
    if not os.path.isfile(args.input):  # a FIFO or a device: read once, as it comes
        return None
    if _is_standard_output(args.input):
        raise ValueError(f"--input {args.input} is also standard output (e.g. '>> {args.input}'): the translations "
                         "would be read back as input without end; write them to another file")
    with open_text(args.input, "--input", INPUT_TEXT) as lines:  # read whole before any work: a bad line is named
        count = sum(1 for _ in lines)
    if count == 0:
        raise ValueError(NO_LINES.format(args.input))
    return count


def _is_standard_output(path):
    """Whether standard output is the file ``path`` (as with ``>> path``)."""
    try:
        output = os.fstat(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no real standard output (e.g. captured by a test)
        return False
    given = os.stat(path)
    return (output.st_dev, output.st_ino) == (given.st_dev, given.st_ino)


def load_translator(args):
    """The translator of --checkpoint, or the --average of several, on --device (default cpu), checked against
    --layer, --text and --plot. Sets args.beam and args.length_penalty to the decoding used (those given,
    else the translator's stored ones); returns (translator, {name: value} of the decoding settings given)."""
    from lib.translation.translator import Translator
    device = args.device or "cpu"
    translator = (Translator.average(args.average, device=device) if args.average else
                  Translator.load(args.checkpoint, device=device))
    layers = translator.model.dec_layers
    if args.layer is not None and not 1 <= args.layer <= layers:
        raise ValueError(f"--layer {args.layer} is out of range: this translator has {layers} decoder "
                         f"layer{'s' if layers != 1 else ''}, so --layer must be from 1 to {layers}")
    if args.text is not None:
        from lib.explorer.page import check_source_length
        check_source_length(translator, args.text)
    if (args.test or args.text is not None) and args.plot and layers == 0:
        raise ValueError("this translator has no decoder layers, so no cross-attention to draw: leave out --plot")
    chosen = {name: value for name, value in (("beam", args.beam), ("length_penalty", args.length_penalty))
              if value is not None}
    decoding = dict(translator.decoding, **chosen)
    args.beam, args.length_penalty = decoding["beam"], decoding["length_penalty"]
    return translator, chosen


def export(args, translator, chosen):
    """Write the translator to --export with float16 weights; the decoding settings ``chosen`` are stored with it."""
    if chosen:
        translator.info["decoding"] = dict(translator.decoding, **chosen)
    translator.save(args.export, half=True)
    print(f"Wrote {args.export} ({os.path.getsize(args.export) / 2**20:.1f} MiB, float16 weights); its "
          f"decoding: {describe_decoding(args.beam, args.length_penalty)}")


def test_line(args, translator):
    """Print one corpus pair and its translation; with --plot and --html show the attention behind that translation."""
    from lib.translation.corpus import corpus_line
    pair, count, seen = corpus_line(args.line, args.split, setting(args, "corpus"), setting(args, "corpus_format"))
    translation, plot = _translate_one(args, translator, pair.german)
    print(f"Line {args.line} of the {args.split} split ({count} pairs)")
    print(f"German:      {pair.german}")
    print(f"Reference:   {pair.english}")
    print(f"Translation: {translation}")
    if args.split == "all" and own_corpus(args):  # a corpus of the user's own: the translator's is not known here
        print("Seen in training: unknown (--split all of a corpus that need not be the translator's training corpus)")
    else:
        print(f"Seen in training: {'yes' if seen else 'no'}")
    _show_attention(args, translator, pair.german, plot, f"line{args.line}", pair.english)


def translate_text(args, translator):
    """Print --text and its translation; with --plot and --html show the attention behind that translation."""
    translation, plot = _translate_one(args, translator, args.text)
    print(f"German:      {args.text}")
    print(f"Translation: {translation}")
    _show_attention(args, translator, args.text, plot, "text")


def _translate_one(args, translator, german):
    """(translation, what --plot draws: (source pieces, output pieces, weights) of --layer, or None)."""
    if args.plot:
        source_pieces, output_pieces, translation, weights = translator.attention(
            german, layer=(args.layer or translator.model.dec_layers) - 1, no_repeat_ngram=args.no_repeat_ngram,
            beam=args.beam, length_penalty=args.length_penalty)
        return translation, (source_pieces, output_pieces, weights)
    return translator.translate([german], beam=args.beam, no_repeat_ngram=args.no_repeat_ngram,
                                length_penalty=args.length_penalty)[0], None


def _show_attention(args, translator, german, plot, name, reference=None):
    """--plot: save the heatmaps ``plot``; --html: write the attention explorer of ``german``'s translation."""
    if plot is not None:
        from lib.plot import finish_figure, show_translation_attention
        search = f"beam {args.beam}" if args.beam > 1 else "greedy"
        figure = show_translation_attention(
            *plot, title=f"Cross-attention of decoder layer {args.layer or translator.model.dec_layers} ({search} "
                         f"translation): {german}")
        path = finish_figure(figure, os.path.join(args.figures_dir, f"translation_attention_{name}.png"),
                             show=not args.no_show)
        print(f"Attention heatmaps saved to {path}")
    if args.html is not None:
        from lib.explorer.page import translation_attention, translation_page_data, write_page
        KEPT.text = f"{NOTHING_WRITTEN} to --html {args.html}" + (f" (the heatmaps were saved to {path})"
                                                                  if plot is not None else "")
        result = translation_attention(translator, german, beam=args.beam, length_penalty=args.length_penalty,
                                       no_repeat_ngram=args.no_repeat_ngram)
        decoding = describe_decoding(args.beam, args.length_penalty) + (
            f", no repeated {args.no_repeat_ngram}-grams" if args.no_repeat_ngram else "")
        model = f"average of {len(args.average)} checkpoints" if args.average else args.checkpoint
        size = write_page(translation_page_data(result, translator, model, decoding, reference), args.html)
        print(f"Attention explorer ({size / 1024:.0f} KB) saved to {args.html}: open it in a web browser")


def translate_file(args, translator, count=None, threads=1):
    """Translate --input line by line into stdout, writing and flushing each batch's translations in input order
    as soon as they are ready (``threads`` batches decoded at once); a progress bar on stderr for a file (``count``
    lines), none for standard input. Lines from a pipe or a terminal are translated as they come: none waits for a
    line that has not arrived yet."""
    from tqdm.auto import tqdm
    interactive = args.input == "-" and sys.stdin.isatty()
    live = arrives_over_time(args.input)
    bar = tqdm(total=count, unit=" lines", file=sys.stderr, dynamic_ncols=True,
               disable=args.no_progress or args.input == "-")
    written = 0
    KEPT.text = translated_so_far(written)
    try:
        def open_lines():
            return open_text(args.input, "--input", INPUT_TEXT)
        # lines that arrive over time are opened, read and closed by a thread of their own (see live_map)
        with warnings.catch_warnings(record=True) as caught, \
                (contextlib.nullcontext(open_lines) if live else open_lines()) as lines:
            warnings.simplefilter("always")
            for translations in translator.translate_stream(lines, beam=args.beam,
                                                            batch_size=args.batch_size,
                                                            no_repeat_ngram=args.no_repeat_ngram,
                                                            length_penalty=args.length_penalty,
                                                            workers=threads, live=live):
                block = "".join(translation + "\n" for translation in translations)
                with STOPS_DEFERRED:  # a stop comes after the block is written and counted, never between
                    if bar.disable:
                        sys.stdout.write(block)
                    else:
                        bar.write(block, file=sys.stdout, end="")
                    sys.stdout.flush()
                    written += len(translations)
                    KEPT.text = translated_so_far(written)
                for warning in caught:
                    bar.write(f"warning: {warning.message}", file=sys.stderr)
                caught.clear()
                bar.update(len(translations))
    except BrokenPipeError:  # e.g. piped into head: stop quietly, with the exit code of a finished translation
        discard_stdout()
    finally:
        bar.close()
    if not written and not interactive:
        raise ValueError(NO_LINES.format(args.input))


def translated_so_far(count):
    """What a stopped --input translation kept (lib.cli.KEPT): the ``count`` lines written to standard output."""
    if not count:
        return NOTHING_WRITTEN
    return f"the {count} line{'s' if count != 1 else ''} translated so far {'were' if count != 1 else 'was'} written"


def evaluate(args, translator, threads=1):
    """Score ``translator`` on --split; with --compare, score that baseline translator too and compare them."""
    from lib.translation.corpus import DING_PATH, read_corpus, split_corpus
    from lib.translation.translator import Translator
    KEPT.text = NOTHING_WRITTEN
    baseline = Translator.load(args.compare, device=args.device or "cpu") if args.compare else None
    corpus = setting(args, "corpus")
    with warnings.catch_warnings(record=True) as caught:  # rows the reader skipped, one line each
        warnings.simplefilter("always")
        if args.split == "all":  # a test set of the user's own: every pair, in file order
            pairs = read_corpus(corpus, setting(args, "corpus_format"))
        else:
            pairs = split_corpus(read_corpus(corpus, setting(args, "corpus_format"), sentences_only=True))[args.split]
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if not pairs:
        raise ValueError(f"--eval: the {args.split} split of {corpus or DING_PATH} is empty: held-out splits hold "
                         "full sentences only (about 5% of them each), so the corpus needs more full sentences")
    options = dict(beam=args.beam, batch_size=args.batch_size, no_repeat_ngram=args.no_repeat_ngram, workers=threads,
                   length_penalty=args.length_penalty)
    bleu, chrf, hypotheses = translator.evaluate(pairs, **options)
    blocking = f", no repeated {args.no_repeat_ngram}-grams" if args.no_repeat_ngram else ""
    what = f"pairs of {corpus}" if args.split == "all" else f"{args.split} sentences"
    print(f"{len(pairs)} {what}, {describe_decoding(args.beam, args.length_penalty)}{blocking}")
    KEPT.text = "no score was written"
    if baseline is not None:
        from lib.translation.significance import paired_bootstrap
        baseline_bleu, baseline_chrf, baseline_hypotheses = baseline.evaluate(pairs, **options)
        print(f"baseline {args.compare}: BLEU {baseline_bleu:.2f} chrF {baseline_chrf:.2f}")
        KEPT.text = "the baseline's score was written, not the translator's"
        comparisons = paired_bootstrap([pair.english for pair in pairs], baseline_hypotheses, hypotheses,
                                       samples=args.bootstrap_samples)
        print(f"gain over the baseline, paired bootstrap of {args.bootstrap_samples} resamples: "
              + "; ".join(comparison.describe() for comparison in comparisons.values()))
    print(f"BLEU {bleu:.2f} chrF {chrf:.2f}")
