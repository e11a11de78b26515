"""German-to-English translation with the library's Transformer: train, test one line, plot attention, translate
files, evaluate BLEU / chrF.

Examples:
    python run_translation.py --test --line=7 --plot
    echo "Ich habe morgen keine Zeit." | python run_translation.py --input -
    python run_translation.py --eval --beam 4
    python run_translation.py --train --max-minutes 60          (add --resume to continue)
    torchrun --nproc_per_node=2 run_translation.py --train      (data parallel, see README)
"""
import argparse
import os
import sys
from dataclasses import fields

from lib.translation import SHIPPED_CHECKPOINT
from lib.translation_training import LR_SCHEDULES, TrainConfig

TRAINING_HELP = {
    "de_vocab_size": "German subword vocabulary size",
    "en_vocab_size": "English subword vocabulary size (the output layer's width)",
    "max_len": "longest sentence in subword tokens (longer training pairs are skipped)",
    "embed_dim": "model width", "enc_layers": "encoder layers", "dec_layers": "decoder layers",
    "num_heads": "attention heads", "dropout": "dropout rate during training",
    "batch_tokens": "padded tokens per side in a batch (per process)", "lr": "peak learning rate (AdamW)",
    "warmup_steps": "linear warm-up steps before the decay", "weight_decay": "AdamW weight decay",
    "lr_schedule": "decay after the warm-up: inverse-sqrt (lr * sqrt(warmup / step)) or linear (to 0 at "
                   "--max-steps, so that the run anneals; set --max-steps to the steps the run can afford)",
    "label_smoothing": "label smoothing of the cross-entropy", "clip_norm": "gradient norm clipping",
    "sentence_repeats": "times each training sentence appears per epoch",
    "phrases_per_epoch": "dictionary phrases drawn per epoch beside the sentences",
    "max_steps": "stop after this many optimizer steps", "max_minutes": "stop after this many minutes (0: no limit)",
    "eval_every": "validate (loss, BLEU, chrF) and checkpoint every this many steps",
    "eval_sentences": "validation sentences translated for BLEU at each validation",
    "keep_snapshots": "validated translators kept in OUT_DIR/snapshots for --average (0: none)",
    "init_from": "start a new run from this translator checkpoint's weights, vocabularies and shape (fresh "
                 "optimizer), e.g. data/translator.pth",
    "seed": "random seed (model, data order, phrase sampling)", "out_dir": "folder for last.pth, best.pth, log.jsonl",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_argument_group("what to do (one of)")
    actions.add_argument("--train", action="store_true", help="train a translator (see 'training' flags)")
    actions.add_argument("--test", action="store_true", help="translate one corpus pair, chosen by --line")
    actions.add_argument("--input", metavar="FILE",
                         help="translate each line of FILE ('-' for standard input), one output line per input line")
    actions.add_argument("--eval", action="store_true",
                         help="BLEU and chrF (sacrebleu, cased) on the test split (or --split valid); last line "
                              "'BLEU <v> chrF <v>'")
    actions.add_argument("--curves", action="store_true",
                         help="draw the loss, BLEU and chrF curves of the run in --out-dir (its log.jsonl) to --out")
    actions.add_argument("--export", metavar="PATH",
                         help="write --checkpoint (e.g. results/translation/best.pth), or the --average of several, "
                              "to PATH with float16 weights, half the size, as data/translator.pth is shipped")
    use = parser.add_argument_group("using a translator")
    use.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT,
                     help=f"translator checkpoint to use (default: the shipped {SHIPPED_CHECKPOINT})")
    use.add_argument("--average", nargs="+", metavar="CHECKPOINT",
                     help="use the average of these checkpoints' weights instead of --checkpoint (e.g. "
                          "results/translation/snapshots/*.pth); with --export, write that average")
    use.add_argument("--line", type=int, default=1, help="with --test: 1-based pair number within --split")
    use.add_argument("--split", default="test", choices=("train", "valid", "test", "all"),
                     help="with --test: which split --line counts in; with --eval: valid (to choose between models) or "
                          "test (default: the held-out test sentences)")
    use.add_argument("--plot", action="store_true",
                     help="with --test: draw the cross-attention heatmaps of every head (saved under --out)")
    use.add_argument("--layer", type=int, default=-1,
                     help="with --plot: decoder layer whose cross-attention is drawn (1-based; default the last)")
    use.add_argument("--beam", type=int, default=1, help="beam width for translation (1: greedy)")
    use.add_argument("--no-repeat-ngram", type=int, default=0, metavar="N",
                     help="never repeat N subword tokens in one translation (n-gram blocking, against repetitions "
                          "like 'in France, in France'; 0: off)")
    use.add_argument("--batch-size", type=int, default=64, help="sentences translated together")
    use.add_argument("--out", default="results", help="folder for figures")
    use.add_argument("--no-show", action="store_true", help="save figures without opening a window")
    data = parser.add_argument_group("corpus")
    data.add_argument("--corpus", default=None,
                      help="corpus file (default: the installed Ding dictionary /usr/share/trans/de-en); for "
                           "iwslt the common prefix of the .de/.en files, e.g. train.tags.de-en")
    data.add_argument("--corpus-format", default="ding", choices=("ding", "tsv", "iwslt"),
                      help="ding: 'german :: english' lines; tsv: german<TAB>english; iwslt: a .de/.en file pair")
    training = parser.add_argument_group("training")
    training.add_argument("--resume", action="store_true", help="continue the run in --out-dir from last.pth")
    training.add_argument("--device", default=None, choices=("cpu", "cuda"),
                          help="device for training and translation (default: cuda when available for training, "
                               "cpu for translation)")
    training.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPUs; off by default)")
    training.add_argument("--compile", action="store_true", help="torch.compile the model (off by default)")
    training.add_argument("--no-progress", action="store_true", help="no progress bar")
    defaults = TrainConfig()
    for field in fields(TrainConfig):
        if field.name in TRAINING_HELP:
            kind = str if field.name == "init_from" else type(getattr(defaults, field.name))
            training.add_argument("--" + field.name.replace("_", "-"), type=kind,
                                  default=getattr(defaults, field.name),
                                  choices=LR_SCHEDULES if field.name == "lr_schedule" else None,
                                  help=f"{TRAINING_HELP[field.name]} (default {getattr(defaults, field.name)})")
    args = parser.parse_args(argv)
    if sum([args.train, args.test, args.input is not None, args.eval, args.curves, args.export is not None]) != 1:
        parser.error("choose exactly one of --train, --test, --input FILE, --eval, --curves, --export PATH")
    if args.beam < 1:
        parser.error("--beam must be at least 1")
    if args.no_repeat_ngram < 0:
        parser.error("--no-repeat-ngram must be 0 (off) or a positive n-gram length")
    return args


def train(args):
    import torch
    from lib.translation_training import train as run_training
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    values = {field.name: getattr(args, field.name) for field in fields(TrainConfig) if hasattr(args, field.name)}
    values.update(corpus=args.corpus, corpus_format=args.corpus_format, device=device, amp=args.amp,
                  compile=args.compile)
    config = TrainConfig(**values)
    explicit = {name for name in values if f"--{name.replace('_', '-')}" in " ".join(sys.argv)}
    overrides = {name: values[name] for name in explicit | {"device", "amp", "compile", "out_dir"}}
    records = run_training(config, resume=args.resume, progress=not args.no_progress, overrides=overrides)
    if records and int(os.environ.get("RANK", "0")) == 0:
        best = max(records, key=lambda record: record["valid_bleu"])
        print(f"Best validation BLEU {best['valid_bleu']} chrF {best['valid_chrf']} at step {best['step']}; "
              f"translator in {os.path.join(config.out_dir, 'best.pth')}")


def test_line(args, translator):
    from lib.corpus import corpus_line
    pair, count, seen = corpus_line(args.line, args.split, args.corpus, args.corpus_format)
    layer = args.layer - 1 if args.layer > 0 else args.layer
    source_pieces, output_pieces, translation, weights = translator.attention(
        pair.german, layer=layer, no_repeat_ngram=args.no_repeat_ngram)
    if args.beam > 1:
        translation = translator.translate([pair.german], beam=args.beam, no_repeat_ngram=args.no_repeat_ngram)[0]
    print(f"Line {args.line} of the {args.split} split ({count} pairs)")
    print(f"German:      {pair.german}")
    print(f"Reference:   {pair.english}")
    print(f"Translation: {translation}")
    print(f"Seen in training: {'yes' if seen else 'no'}")
    if args.plot:
        from lib.plot import finish_figure, show_translation_attention
        layer_number = layer + 1 if layer >= 0 else translator.model.dec_layers + layer + 1
        figure = show_translation_attention(
            source_pieces, output_pieces, weights,
            title=f"Cross-attention of decoder layer {layer_number}: {pair.german}")
        path = finish_figure(figure, os.path.join(args.out, f"translation_attention_line{args.line}.png"),
                             show=not args.no_show)
        print(f"Attention heatmaps saved to {path}")


def translate_file(args, translator):
    stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    with stream:
        lines = [line.rstrip("\n") for line in stream]
    for translation in translator.translate(lines, beam=args.beam, batch_size=args.batch_size,
                                            no_repeat_ngram=args.no_repeat_ngram):
        print(translation)


def evaluate(args, translator):
    from lib.corpus import read_corpus, split_corpus
    if args.split not in ("valid", "test"):
        raise ValueError(f"--eval scores a held-out split: --split valid or test, not {args.split}")
    pairs = split_corpus(read_corpus(args.corpus, args.corpus_format, sentences_only=True))[args.split]
    bleu, chrf, _ = translator.evaluate(pairs, beam=args.beam, batch_size=args.batch_size,
                                        no_repeat_ngram=args.no_repeat_ngram)
    blocking = f", no repeated {args.no_repeat_ngram}-grams" if args.no_repeat_ngram else ""
    print(f"{len(pairs)} {args.split} sentences, beam {args.beam}{blocking}")
    print(f"BLEU {bleu:.2f} chrF {chrf:.2f}")


def curves(args):
    import json
    from lib.plot import finish_figure, show_training_curves
    log = os.path.join(args.out_dir, "log.jsonl")
    if not os.path.isfile(log):
        raise FileNotFoundError(f"No training log at {log}: train first, or point --out-dir at a run's folder.")
    with open(log) as file:
        records = [json.loads(line) for line in file if line.strip()]
    figure = show_training_curves(records, title=f"Training run in {args.out_dir}")
    path = finish_figure(figure, os.path.join(args.out, "translation_training.png"), show=not args.no_show)
    print(f"Curves of {len(records)} validations saved to {path}")


def main(args):
    if args.train:
        return train(args)
    if args.curves:
        return curves(args)
    from lib.translation import Translator
    device = args.device or "cpu"
    if args.average:
        translator = Translator.average(args.average, device=device)
    else:
        translator = Translator.load(args.checkpoint, device=device)
    if args.export:
        translator.save(args.export, half=True)
        print(f"Wrote {args.export} ({os.path.getsize(args.export) / 2**20:.1f} MiB, float16 weights)")
    elif args.test:
        test_line(args, translator)
    elif args.input is not None:
        translate_file(args, translator)
    else:
        evaluate(args, translator)


if __name__ == "__main__":
    try:
        main(parse_args())
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        sys.exit(f"error: {error}")
