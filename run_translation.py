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

from lib.cli import FlagTable, device_name, float_range, int_range, run_main, set_threads
from lib.training.config import add_flags
from lib.translation import commands
from lib.translation.decoding import BEAM_RANGE, LENGTH_PENALTY_RANGE
from lib.translation.translator import SHIPPED_CHECKPOINT

COMMANDS = ("train", "test", "text", "input", "eval", "curves", "export")
TRANSLATING = ("test", "text", "input", "eval", "export")
# Flags that only some commands use (dest -> those commands); a flag not named here applies to every command or harms
# none (--device, --threads, --no-show, --no-progress, the corpus). TrainConfig's own flags are --train's alone.
ONLY_WITH = {"line": ("test",), "plot": ("test", "text"), "layer": ("test", "text"), "html": ("test", "text"),
             "split": ("test", "eval"), "compare": ("eval",), "bootstrap_samples": ("eval",), "checkpoint": TRANSLATING,
             "average": TRANSLATING, "beam": TRANSLATING, "length_penalty": TRANSLATING,
             "no_repeat_ngram": ("test", "text", "input", "eval"), "batch_size": ("input", "eval"),
             "figures_dir": ("test", "text", "curves"), "force": ("train", "export", "test", "text"),
             "resume": ("train",), "amp": ("train",), "compile": ("train",), "out_dir": ("train", "curves")}


def build_parser(table=None):
    """The parser (every flag absent from its result unless given), its flags recorded in ``table`` (a FlagTable)."""
    table = table or FlagTable()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     argument_default=argparse.SUPPRESS)
    add = table.add
    actions = parser.add_argument_group("what to do (one of)").add_mutually_exclusive_group(required=True)
    add(actions, "--train", action="store_true", default=False, help="train a translator (see 'training' flags)")
    add(actions, "--test", action="store_true", default=False, help="translate one corpus pair, chosen by --line")
    add(actions, "--text", metavar="GERMAN", default=None,
        help="translate one German sentence given here and print it (with --plot and --html, as for --test)")
    add(actions, "--input", metavar="FILE", default=None,
        help="translate each line of FILE (UTF-8; '-' for standard input), one output line per input line, written "
             "as soon as each batch is translated (a progress bar on stderr for a FILE)")
    add(actions, "--eval", action="store_true", default=False,
        help="BLEU and chrF (sacrebleu, cased) on the test split (or --split valid); last line 'BLEU <v> chrF <v>'")
    add(actions, "--curves", action="store_true", default=False,
        help="draw the loss, BLEU and chrF curves of the run in --out-dir (its log.jsonl) to --figures-dir")
    add(actions, "--export", metavar="PATH", default=None,
        help="write --checkpoint (e.g. results/translation/best.pth), or the --average of several, to PATH with "
             "float16 weights, half the size, as data/translator.pth is shipped (an existing PATH only with --force)")
    use = parser.add_argument_group("using a translator")
    add(use, "--checkpoint", default=SHIPPED_CHECKPOINT,
        help="translator checkpoint to use (default: the shipped data/translator.pth of the repository)")
    add(use, "--average", nargs="+", metavar="CHECKPOINT", default=None,
        help="use the average of these checkpoints' weights instead of --checkpoint (e.g. "
             "results/translation/snapshots/*.pth); with --export, write that average")
    add(use, "--compare", metavar="CHECKPOINT", default=None,
        help="with --eval: also score the translator CHECKPOINT (the baseline, e.g. data/translator.pth) on the same "
             "sentences with the same decoding, and test the difference by paired bootstrap resampling: the 95%% "
             "interval of the gain in BLEU and chrF, and the fraction of resamples without a gain (p)")
    add(use, "--bootstrap-samples", type=int_range(1, 100_000), default=1000, metavar="N",
        help="with --compare: resamples of the test sentences (default 1000)")
    add(use, "--line", type=int_range(1, 10_000_000), default=1, help="with --test: 1-based pair number within --split")
    add(use, "--split", default="test", choices=("train", "valid", "test", "all"),
        help="with --test: which split --line counts in; with --eval: valid (to choose between models) or test "
             "(default: the held-out test sentences), or all the sentences of a --corpus of your own (e.g. "
             "data/everyday.tsv, everyday sentences with their translations)")
    add(use, "--plot", action="store_true", default=False,
        help="with --test or --text: draw the cross-attention heatmaps of every head behind the translation printed "
             "(saved under --figures-dir)")
    add(use, "--html", nargs="?", const="", default=None, metavar="FILE",
        help="with --test or --text: write the attention explorer, one offline web page with every layer and head of "
             "the encoder's, the decoder's and the cross-attention behind the translation printed, to FILE (default: "
             "attention_explorer_line<N>.html or attention_explorer_text.html in --figures-dir); see "
             "docs/attention-explorer.md")
    add(use, "--layer", type=int_range(1, 64), default=None,
        help="with --plot: decoder layer whose cross-attention is drawn (1-based; default the last)")
    add(use, "--beam", type=int_range(*BEAM_RANGE), default=None,
        help="beam width for translation (1: greedy; default: the translator's stored decoding, else 1); with "
             "--export, stored with the translator as its default")
    add(use, "--length-penalty", type=float_range(*LENGTH_PENALTY_RANGE), default=None, metavar="ALPHA",
        help="beam search: finished translations are ranked by log-probability / ((5 + length) / 6) ** ALPHA (GNMT); "
             "0 ranks by log-probability alone, larger values prefer longer ones, negative ones shorter; from "
             f"{LENGTH_PENALTY_RANGE[0]:g} to {LENGTH_PENALTY_RANGE[1]:g} (default: the translator's stored decoding, "
             "else 1.0); with --export, stored too")
    add(use, "--no-repeat-ngram", type=int_range(0, 100), default=0, metavar="N",
        help="never repeat N subword tokens in one translation (n-gram blocking, against repetitions like 'in France, "
             "in France'; 0: off)")
    add(use, "--batch-size", type=int_range(1, 4096), default=64,
        help="sentences translated together (with --input: lines read before their translations are written)")
    add(use, "--threads", type=int_range(1, 256), default=None, metavar="N",
        help="CPU threads: with --input and --eval, N batches translated at once, one torch thread each, which stays "
             f"fast when another job holds a core (default {commands.MOST_DEFAULT_THREADS}, 1 on a one-core "
             "machine); with --train, torch's threads (default: torch's choice)")
    add(use, "--figures-dir", default="results", metavar="FOLDER",
        help="folder for figures (--plot, --curves; default results)")
    add(use, "--no-show", action="store_true", default=False, help="save figures without opening a window")
    add(use, "--force", action="store_true", default=False,
        help="with --export or --html FILE: overwrite an existing file; with --train: start over in an --out-dir that "
             "holds a run, deleting its last.pth, best.pth, log.jsonl and snapshots/")
    data = parser.add_argument_group("corpus")
    add(data, "--corpus", help="corpus file (default: the installed Ding dictionary /usr/share/trans/de-en); for "
                               "iwslt the common prefix of the .de/.en files, e.g. train.tags.de-en")
    add(data, "--corpus-format", choices=("ding", "tsv", "iwslt"),
        help="ding (default): 'german :: english' lines; tsv: german<TAB>english; iwslt: a .de/.en file pair")
    training = parser.add_argument_group("training")
    add(training, "--resume", action="store_true", default=False, help="continue the run in --out-dir from last.pth")
    add(training, "--device", type=device_name, default=None,
        help="cpu, cuda or cuda:N, for training and translation (default: cuda when available for training, cpu for "
             "translation)")
    add(training, "--amp", action=argparse.BooleanOptionalAction, default=None,
        help="bfloat16 autocast (default: on where the processor computes bfloat16 natively: avx512_bf16/AMX CPUs, "
             "bf16 GPUs)")
    add(training, "--compile", action="store_true", default=False, help="torch.compile the model (off by default)")
    add(training, "--no-progress", action="store_true", default=False, help="no progress bar")
    add_flags(training, table, skip=("corpus", "corpus_format") + commands.SCRIPT_FLAGS)
    return parser


def parse_args(argv=None):
    """The arguments of ``argv`` (None: sys.argv); flags that do not apply to the command end the script (exit 2)."""
    table = FlagTable()
    parser = build_parser(table)
    args, given = table.parse(parser, argv)
    command = next(name for name in COMMANDS if name in given)
    wrong = [option for dest, option in given.items()
             if command not in ONLY_WITH.get(dest, ("train",) if dest in commands.TRAINING_SETTINGS else COMMANDS)]
    if "layer" in given and not args.plot and "--layer" not in wrong:
        wrong.append("--layer")
    if wrong:
        uses = "--layer needs --plot; " if wrong == ["--layer"] else ""
        parser.error(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to --{command}: {uses}"
                     f"leave {'it' if len(wrong) == 1 else 'them'} out (see --help for what each flag works with)")
    return args


def main(args):
    """Run the command of ``args`` (from parse_args): train, draw curves, or load the translator and use it."""
    commands.check_device(args.device)
    if args.train:
        return commands.train(args)
    if args.curves:
        return commands.curves(args)
    count = commands.check_translation_request(args)
    threads = args.threads or commands.default_threads()
    set_threads(1)  # one torch thread per batch; --threads batches at once
    translator, chosen = commands.load_translator(args)
    if args.export:
        commands.export(args, translator, chosen)
    elif args.test:
        commands.test_line(args, translator)
    elif args.text is not None:
        commands.translate_text(args, translator)
    elif args.input is not None:
        commands.translate_file(args, translator, count, threads)
    else:
        commands.evaluate(args, translator, threads)


if __name__ == "__main__":
    run_main(main, parse_args())
