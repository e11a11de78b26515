"""German-to-English translation with the library's Transformer: train, test one line, plot attention, translate
files, evaluate BLEU / chrF.

Examples:
    python run_translation.py --test --line=7 --plot
    python run_translation.py --text "Ich habe heute keine Zeit." --html    (every layer and head, in a web page)
    echo "Ich habe morgen keine Zeit." | python run_translation.py --input -
    python run_translation.py --input german.txt > english.txt      (streams; progress bar on stderr)
    python run_translation.py --eval --beam 4
    python run_translation.py --train --max-minutes 60          (add --resume to continue)
    torchrun --nproc_per_node=2 run_translation.py --train      (data parallel, see README)

The shipped translator (data/translator.pth) is found beside lib/, whatever the working folder; paths you give are
relative to the working folder.
"""
import argparse
import functools
import os
import re
import sys
import typing
import warnings
from dataclasses import MISSING, fields

from lib.cli import (check_new_file, check_readable_file, check_writable_file, check_writable_folder, discard_stdout,
                     float_range, int_range, run_main, set_threads)
from lib.translation.decoding import LENGTH_PENALTY_RANGE
from lib.translation.translator import SHIPPED_CHECKPOINT
from lib.training.config import TrainConfig

# Translating (--input, --eval) uses --threads N as N batches decoded at once, each on one torch thread: torch's own
# threads split every operation and wait for the slowest, so beside a job that holds a core two of them decode
# several times slower than one; separate batches never wait for each other (benchmarks/translate_file_speed.py).
MOST_DEFAULT_THREADS = 2


def default_threads():
    """The CPU threads used for translating unless --threads is given: 2, or 1 on a one-core machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MOST_DEFAULT_THREADS, cores))


# Passed to training as overrides whether given or not (as the run's own settings of devices and folder).
ALWAYS_OVERRIDDEN = ("device", "amp", "compile", "out_dir")
_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


def _field_default(field):
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:
        return field.default_factory()
    return None


def _field_type(field):
    """bool, int, float or str: the type of a TrainConfig field (its annotation, else its default's); None when it
    is none of these (such a field gets no flag)."""
    kind = field.type
    if isinstance(kind, str):  # postponed annotations: "int", "str | None", "Optional[str]"
        names = kind.replace("typing.", "").replace("Optional[", "").replace("]", "").split("|")
        names = [name.strip() for name in names if name.strip() != "None"]
        kind = _TYPES.get(names[0]) if len(names) == 1 else None
    else:
        arguments = [argument for argument in typing.get_args(kind) if argument is not type(None)]
        if arguments:
            kind = arguments[0] if len(arguments) == 1 else None
    if kind in (bool, int, float, str):
        return kind
    default = _field_default(field)
    return type(default) if type(default) in (bool, int, float, str) else None


def _field_parser(field, kind):
    """The argparse type of a TrainConfig field: its range from the field's metadata ("low", "high", "low_open",
    "high_open"; checked again by TrainConfig itself), floats finite."""
    meta = field.metadata
    if kind is int:
        return int_range(meta["low"], meta.get("high")) if meta.get("low") is not None else int
    if kind is float:
        return float_range(meta.get("low"), meta.get("high"), meta.get("low_open", False),
                           meta.get("high_open", False))
    return kind


def _device(text):
    """An argparse type: cpu, cuda or cuda:N."""
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return text


def _base_parser():
    """Every flag but those generated from TrainConfig's fields. Returns (parser, its 'training' group)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_argument_group("what to do (one of)")
    actions.add_argument("--train", action="store_true", help="train a translator (see 'training' flags)")
    actions.add_argument("--test", action="store_true", help="translate one corpus pair, chosen by --line")
    actions.add_argument("--text", metavar="GERMAN",
                         help="translate one German sentence given here and print it (with --plot and --html, as "
                              "for --test)")
    actions.add_argument("--input", metavar="FILE",
                         help="translate each line of FILE (UTF-8; '-' for standard input), one output line per "
                              "input line, written as soon as each batch is translated (a progress bar on stderr "
                              "for a FILE)")
    actions.add_argument("--eval", action="store_true",
                         help="BLEU and chrF (sacrebleu, cased) on the test split (or --split valid); last line "
                              "'BLEU <v> chrF <v>'")
    actions.add_argument("--curves", action="store_true",
                         help="draw the loss, BLEU and chrF curves of the run in --out-dir (its log.jsonl) to "
                              "--figures-dir")
    actions.add_argument("--export", metavar="PATH",
                         help="write --checkpoint (e.g. results/translation/best.pth), or the --average of several, "
                              "to PATH with float16 weights, half the size, as data/translator.pth is shipped (an "
                              "existing PATH only with --force)")
    use = parser.add_argument_group("using a translator")
    use.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT,
                     help="translator checkpoint to use (default: the shipped data/translator.pth of the repository)")
    use.add_argument("--average", nargs="+", metavar="CHECKPOINT",
                     help="use the average of these checkpoints' weights instead of --checkpoint (e.g. "
                          "results/translation/snapshots/*.pth); with --export, write that average")
    use.add_argument("--compare", metavar="CHECKPOINT",
                     help="with --eval: also score the translator CHECKPOINT (the baseline, e.g. "
                          "data/translator.pth) on the same sentences with the same decoding, and test the difference "
                          "by paired bootstrap resampling: the 95%% interval of the gain in BLEU and chrF, and the "
                          "fraction of resamples without a gain (p)")
    use.add_argument("--bootstrap-samples", type=int_range(1), default=1000, metavar="N",
                     help="with --compare: resamples of the test sentences (default %(default)s)")
    use.add_argument("--line", type=int_range(1), default=1,
                     help="with --test: 1-based pair number within --split")
    use.add_argument("--split", default="test", choices=("train", "valid", "test", "all"),
                     help="with --test: which split --line counts in; with --eval: valid (to choose between models) or "
                          "test (default: the held-out test sentences), or all the sentences of a --corpus of your "
                          "own (e.g. data/everyday.tsv, everyday sentences with their translations)")
    use.add_argument("--plot", action="store_true",
                     help="with --test or --text: draw the cross-attention heatmaps of every head behind the "
                          "translation printed (saved under --figures-dir)")
    use.add_argument("--html", nargs="?", const="", default=None, metavar="FILE",
                     help="with --test or --text: write the attention explorer, one offline web page with every "
                          "layer and head of the encoder's, the decoder's and the cross-attention behind the "
                          "translation printed, to FILE (default: attention_explorer_line<N>.html or "
                          "attention_explorer_text.html in --figures-dir); see docs/attention-explorer.md")
    use.add_argument("--layer", type=int_range(1), default=None,
                     help="with --plot: decoder layer whose cross-attention is drawn (1-based; default the last)")
    use.add_argument("--beam", type=int_range(1, 100), default=None,
                     help="beam width for translation (1: greedy; default: the translator's stored decoding, else 1); "
                          "with --export, stored with the translator as its default")
    use.add_argument("--length-penalty", type=float_range(*LENGTH_PENALTY_RANGE), default=None, metavar="ALPHA",
                     help="beam search: finished translations are ranked by log-probability / ((5 + length) / 6) ** "
                          "ALPHA (GNMT); 0 ranks by log-probability alone, larger values prefer longer ones, negative "
                          f"ones shorter; from {LENGTH_PENALTY_RANGE[0]:g} to {LENGTH_PENALTY_RANGE[1]:g} (default: "
                          "the translator's stored decoding, else 1.0); with --export, stored too")
    use.add_argument("--no-repeat-ngram", type=int_range(0), default=0, metavar="N",
                     help="never repeat N subword tokens in one translation (n-gram blocking, against repetitions "
                          "like 'in France, in France'; 0: off)")
    use.add_argument("--batch-size", type=int_range(1), default=64,
                     help="sentences translated together (with --input: lines read before their translations are "
                          "written)")
    use.add_argument("--threads", type=int_range(1, 256), default=None, metavar="N",
                     help="CPU threads: with --input and --eval, N batches translated at once, one torch thread "
                          f"each, which stays fast when another job holds a core (default {MOST_DEFAULT_THREADS}, 1 on "
                          "a one-core machine); with --train, torch's threads (default: torch's choice)")
    use.add_argument("--figures-dir", default="results", metavar="FOLDER",
                     help="folder for figures (--plot, --curves; default %(default)s)")
    use.add_argument("--out", dest="renamed_out", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    use.add_argument("--no-show", action="store_true", help="save figures without opening a window")
    use.add_argument("--force", action="store_true",
                     help="with --export: overwrite an existing PATH; with --train: start over in an --out-dir that "
                          "holds a run, deleting its last.pth, best.pth, log.jsonl and snapshots/")
    data = parser.add_argument_group("corpus")
    data.add_argument("--corpus", default=argparse.SUPPRESS,
                      help="corpus file (default: the installed Ding dictionary /usr/share/trans/de-en); for "
                           "iwslt the common prefix of the .de/.en files, e.g. train.tags.de-en")
    data.add_argument("--corpus-format", default=argparse.SUPPRESS, choices=("ding", "tsv", "iwslt"),
                      help="ding (default): 'german :: english' lines; tsv: german<TAB>english; iwslt: a .de/.en "
                           "file pair")
    training = parser.add_argument_group("training")
    training.add_argument("--resume", action="store_true", help="continue the run in --out-dir from last.pth")
    training.add_argument("--device", default=None, type=_device,
                          help="cpu, cuda or cuda:N, for training and translation (default: cuda when available for "
                               "training, cpu for translation)")
    training.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPUs; off by default)")
    training.add_argument("--compile", action="store_true", help="torch.compile the model (off by default)")
    training.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser, training


@functools.lru_cache(maxsize=None)
def _base_names():
    """Names that the base parser always sets: TrainConfig fields among them get no generated flag."""
    return frozenset(vars(_base_parser()[0].parse_args([])))


def build_parser():
    """The parser: the base flags and one flag per TrainConfig field (help from the field's metadata), each
    absent from the parsed arguments unless given, so that training knows which settings the user chose."""
    parser, training = _base_parser()
    for field in fields(TrainConfig):
        kind = _field_type(field)
        if not field.init or field.name in _base_names() or field.name in ("corpus", "corpus_format") or not kind:
            continue
        help_text = field.metadata.get("help") or field.name.replace("_", " ")
        options = {"default": argparse.SUPPRESS, "help": f"{help_text} (default {_field_default(field)})"}
        flag = "--" + field.name.replace("_", "-")
        if kind is bool:
            training.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
            continue
        choices = field.metadata.get("choices")
        training.add_argument(flag, type=_field_parser(field, kind), choices=choices,
                              metavar=field.name.upper() if choices is None else None, **options)
    return parser


COMMANDS = ("train", "test", "text", "input", "eval", "curves", "export")
TRANSLATING = ("test", "text", "input", "eval", "export")
# Flags that only some commands use (dest -> those commands); a flag not named here applies to every command or harms
# none (--device, --threads, --no-show, --no-progress, the corpus). TrainConfig's own flags are --train's alone.
ONLY_WITH = {"line": ("test",), "plot": ("test", "text"), "layer": ("test", "text"), "html": ("test", "text"),
             "split": ("test", "eval"),
             "compare": ("eval",), "bootstrap_samples": ("eval",), "checkpoint": TRANSLATING, "average": TRANSLATING,
             "beam": TRANSLATING, "length_penalty": TRANSLATING, "no_repeat_ngram": ("test", "text", "input", "eval"),
             "batch_size": ("input", "eval"), "figures_dir": ("test", "text", "curves"), "force": ("train", "export"),
             "resume": ("train",), "amp": ("train",), "compile": ("train",), "out_dir": ("train", "curves")}


def _given_flags(argv):
    """{dest: option string} of the flags given in ``argv`` (None: sys.argv), abbreviations resolved by argparse."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    return {action.dest: action.option_strings[0] for action in parser._actions
            if action.dest in given and action.option_strings}


def _flags_that_do_not_apply(args, argv):
    """The flags given that the chosen command does not use (e.g. --plot with --input), in the order of --help."""
    command = next(name for name in COMMANDS if getattr(args, name) not in (False, None))
    config_names = {field.name for field in fields(TrainConfig)} - _base_names() - {"corpus", "corpus_format"}
    wrong = [flag for dest, flag in _given_flags(argv).items()
             if command not in ONLY_WITH.get(dest, ("train",) if dest in config_names else COMMANDS)]
    if "layer" in vars(args) and args.layer is not None and not args.plot and "--layer" not in wrong:
        wrong.append("--layer")
    return command, wrong


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "renamed_out"):
        parser.error("--out was renamed --figures-dir (the folder for figures); --out-dir is a training run's folder")
    if sum([args.train, args.test, args.text is not None, args.input is not None, args.eval, args.curves,
            args.export is not None]) != 1:
        parser.error("choose exactly one of --train, --test, --text GERMAN, --input FILE, --eval, --curves, "
                     "--export PATH")
    command, wrong = _flags_that_do_not_apply(args, argv)
    if wrong:
        uses = "--layer needs --plot; " if wrong == ["--layer"] else ""
        parser.error(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to --{command}: {uses}"
                     f"leave {'it' if len(wrong) == 1 else 'them'} out (see --help for what each flag works with)")
    return args


def given_settings(args):
    """The TrainConfig fields the user gave (by a flag, abbreviated or not, or in parse_args' list), name -> value."""
    names = {field.name for field in fields(TrainConfig)} - _base_names()
    return {name: getattr(args, name) for name in sorted(names) if hasattr(args, name)}


def setting(args, name):
    """A TrainConfig field's value: as given, else TrainConfig's default."""
    field = next(field for field in fields(TrainConfig) if field.name == name)
    return getattr(args, name, _field_default(field))


def _check_device(device):
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
    devices and --out-dir, are passed as ``overrides`` (what a resumed run is asked to change)."""
    import torch
    from lib.training import loop
    given = given_settings(args)
    separate = [f"--{name.replace('_', '-')}" for name in ("de_vocab_size", "en_vocab_size") if name in given]
    if given.get("joint_vocab_size") and separate:
        raise ValueError(f"--joint-vocab-size trains one vocabulary for both languages, {' and '.join(separate)} "
                         "one per language: give either --joint-vocab-size or the per-language sizes")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    config = TrainConfig(**dict(given, device=device, amp=args.amp, compile=args.compile))
    overrides = dict(given)
    overrides.update({name: getattr(config, name) for name in ALWAYS_OVERRIDDEN})
    if args.resume and args.force:
        raise ValueError("--resume continues the run in --out-dir, --force starts it over: give one of them")
    check_writable_folder(config.out_dir, "--out-dir")
    set_threads(args.threads)
    interrupted = getattr(loop, "TrainingInterrupted", KeyboardInterrupt)
    try:
        records = loop.train(config, resume=args.resume, progress=not args.no_progress,
                             overrides=overrides, force=args.force)
    except interrupted as error:  # Ctrl-C (exit 130), SIGTERM (143) or SIGHUP (129), as a shell reports them
        print(str(error) or "interrupted", file=sys.stderr)
        sys.exit(128 + getattr(error, "signum", 2))
    if records and int(os.environ.get("RANK", "0")) == 0:
        best = max(records, key=lambda record: record["valid_bleu"])
        print(f"Best validation BLEU {best['valid_bleu']} chrF {best['valid_chrf']} at step {best['step']}; "
              f"translator in {os.path.join(config.out_dir, 'best.pth')}")


def test_line(args, translator):
    """Print one corpus pair and its translation; with --plot and --html show the attention behind that translation."""
    from lib.translation.corpus import corpus_line
    pair, count, seen = corpus_line(args.line, args.split, setting(args, "corpus"), setting(args, "corpus_format"))
    translation, plot = _translate_one(args, translator, pair.german)
    print(f"Line {args.line} of the {args.split} split ({count} pairs)")
    print(f"German:      {pair.german}")
    print(f"Reference:   {pair.english}")
    print(f"Translation: {translation}")
    if args.split == "all" and _own_corpus(args):  # a corpus of the user's own: the translator's is not known here
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
        result = translation_attention(translator, german, beam=args.beam, length_penalty=args.length_penalty,
                                       no_repeat_ngram=args.no_repeat_ngram)
        decoding = describe_decoding(args.beam, args.length_penalty) + (
            f", no repeated {args.no_repeat_ngram}-grams" if args.no_repeat_ngram else "")
        model = f"average of {len(args.average)} checkpoints" if args.average else args.checkpoint
        size = write_page(translation_page_data(result, translator, model, decoding, reference), args.html)
        print(f"Attention explorer ({size / 1024:.0f} KB) saved to {args.html}: open it in a web browser")


def scan_input(path):
    """Check the --input FILE before any work: a readable file, UTF-8 throughout (else an error naming the line).
    Returns its number of lines."""
    from lib.translation.corpus import not_utf8_error
    check_readable_file(path, "--input")
    count = 0
    with open(path, "rb") as file:
        for count, line in enumerate(file, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise not_utf8_error(path, "--input file") from None
            if b"\0" in line:
                raise ValueError(nul_error(f"--input {path}", count))
    return count


def nul_error(what, number):
    return (f"{what} is a binary file, not text: line {number} holds a NUL byte; give a UTF-8 text file, one German "
            "sentence a line")


def _standard_input_lines():
    """Lines of standard input, decoded as UTF-8 one at a time (an error names the first line that is not)."""
    from lib.translation.corpus import bad_byte
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream put in place of stdin
        yield from sys.stdin
        return
    for number, raw in enumerate(buffer, 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"standard input is not UTF-8 text: line {number} has {bad_byte(raw, error)}; convert "
                             "it, e.g. with 'iconv -f latin1 -t utf-8'") from None
        if "\0" in line:
            raise ValueError(nul_error("standard input", number))
        yield line


def translate_file(args, translator, count=None, threads=1):
    """Translate --input line by line into stdout, writing and flushing each batch's translations in input order
    as soon as they are ready (``threads`` batches decoded at once); a progress bar on stderr for a file (``count``
    lines), none for standard input. Typed lines (a terminal) are translated one by one as they come."""
    from tqdm.auto import tqdm
    if args.input == "-":
        lines, interactive = _standard_input_lines(), sys.stdin.isatty()
    else:
        file = open(args.input, encoding="utf-8-sig")
        lines, interactive = file, False
    bar = tqdm(total=count, unit=" lines", file=sys.stderr, dynamic_ncols=True,
               disable=args.no_progress or args.input == "-")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for translations in translator.translate_stream(lines, beam=args.beam,
                                                            batch_size=1 if interactive else args.batch_size,
                                                            no_repeat_ngram=args.no_repeat_ngram,
                                                            length_penalty=args.length_penalty,
                                                            workers=1 if interactive else threads):
                block = "".join(translation + "\n" for translation in translations)
                if bar.disable:
                    sys.stdout.write(block)
                else:
                    bar.write(block, file=sys.stdout, end="")
                sys.stdout.flush()
                for warning in caught:
                    bar.write(f"warning: {warning.message}", file=sys.stderr)
                caught.clear()
                bar.update(len(translations))
    except BrokenPipeError:  # e.g. piped into head: stop quietly, with the exit code of a finished translation
        discard_stdout()
    finally:
        bar.close()
        if args.input != "-":
            file.close()


def evaluate(args, translator, threads=1, baseline=None):
    """Score ``translator`` on --split; with a ``baseline`` translator, score it too and compare them."""
    from lib.translation.corpus import DING_PATH, read_corpus, split_corpus
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
    if baseline is not None:
        from lib.translation.significance import paired_bootstrap
        baseline_bleu, baseline_chrf, baseline_hypotheses = baseline.evaluate(pairs, **options)
        print(f"baseline {args.compare}: BLEU {baseline_bleu:.2f} chrF {baseline_chrf:.2f}")
        comparisons = paired_bootstrap([pair.english for pair in pairs], baseline_hypotheses, hypotheses,
                                       samples=args.bootstrap_samples)
        print(f"gain over the baseline, paired bootstrap of {args.bootstrap_samples} resamples: "
              + "; ".join(comparison.describe() for comparison in comparisons.values()))
    print(f"BLEU {bleu:.2f} chrF {chrf:.2f}")


def curves(args):
    from lib.plot import finish_figure, show_training_curves
    from lib.training.log import read_training_log
    out_dir = setting(args, "out_dir")
    records = read_training_log(out_dir)
    check_writable_folder(args.figures_dir, "--figures-dir")
    figure = show_training_curves(records, title=f"Training run in {out_dir}")
    path = finish_figure(figure, os.path.join(args.figures_dir, "translation_training.png"), show=not args.no_show)
    print(f"Curves of {len(records)} validations saved to {path}")


def describe_decoding(beam, length_penalty):
    """'greedy' or 'beam 4, length penalty 1.2'."""
    return "greedy" if beam == 1 else f"beam {beam}, length penalty {length_penalty:g}"


def _own_corpus(args):
    """Whether --corpus names a file other than the installed dictionary (the training corpus by default)."""
    from lib.translation.corpus import DING_PATH
    return hasattr(args, "corpus") and os.path.realpath(args.corpus) != os.path.realpath(DING_PATH)


def _check_translation_request(args):
    """The checks of a translating command that need no model: paths, --export's target, --split. Returns the
    number of lines of an --input FILE (else None)."""
    if args.export is not None:
        check_new_file(args.export, "--export", args.force)
    if args.compare is not None:
        check_readable_file(args.compare, "--compare")
    if args.eval and (args.split == "train" or args.split == "all" and not _own_corpus(args)):
        raise ValueError(f"--eval scores held-out sentences: --split valid or test, not {args.split} (whose pairs "
                         "the model trained on); --split all only with a --corpus of your own, e.g. --corpus "
                         "data/everyday.tsv --corpus-format tsv")
    if (args.test or args.eval) and hasattr(args, "corpus") and setting(args, "corpus_format") != "iwslt":
        check_readable_file(args.corpus, "--corpus")
    if args.text is not None and not args.text.strip():
        raise ValueError('--text is empty: give a German sentence, e.g. --text "Ich habe heute keine Zeit."')
    if args.html is not None:
        default = f"attention_explorer_line{args.line}.html" if args.test else "attention_explorer_text.html"
        args.html = args.html or os.path.join(args.figures_dir, default)
        check_writable_file(args.html, "--html")
    if (args.test or args.text is not None) and args.plot:
        check_writable_folder(args.figures_dir, "--figures-dir")
    if args.input == "-" and sys.stdin is None:
        raise ValueError("--input -: standard input is closed; pipe text into it (echo 'Guten Morgen.' | python "
                         "run_translation.py --input -) or give --input FILE")
    if args.input is not None and args.input != "-":
        return scan_input(args.input)
    return None


def main(args):
    _check_device(args.device)
    if args.train:
        return train(args)
    if args.curves:
        return curves(args)
    count = _check_translation_request(args)
    threads = args.threads or default_threads()
    set_threads(1)  # one torch thread per batch; --threads batches at once
    from lib.translation.translator import Translator
    device = args.device or "cpu"
    if args.average:
        translator = Translator.average(args.average, device=device)
    else:
        translator = Translator.load(args.checkpoint, device=device)
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
    if args.export:
        if chosen:
            translator.info["decoding"] = decoding
        translator.save(args.export, half=True)
        print(f"Wrote {args.export} ({os.path.getsize(args.export) / 2**20:.1f} MiB, float16 weights); its "
              f"decoding: {describe_decoding(decoding['beam'], decoding['length_penalty'])}")
    elif args.test:
        test_line(args, translator)
    elif args.text is not None:
        translate_text(args, translator)
    elif args.input is not None:
        translate_file(args, translator, count, threads)
    else:
        baseline = Translator.load(args.compare, device=device) if args.compare else None
        evaluate(args, translator, threads, baseline)


if __name__ == "__main__":
    run_main(main, parse_args())
