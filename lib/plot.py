"""Figures: counting attention heatmaps, saliency maps, adversarial examples, translation cross-attention.

Every function returns the matplotlib Figure; ``finish_figure`` saves it and shows it where a display exists.
"""
import os

import matplotlib


def finish_figure(figure, path=None, show=True):
    """Save ``figure`` to ``path`` (folders created; written whole or not at all, through lib.files.atomic_output)
    and show it when a display exists. Returns ``path``."""
    import matplotlib.pyplot as plt
    if path is not None:
        from lib.files import atomic_output
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        extension = os.path.splitext(path)[1].lstrip(".").lower() or "png"
        with atomic_output(path, "wb", suffix="." + extension) as file:
            figure.savefig(file, format=extension, dpi=120, bbox_inches="tight")
    if show and _has_display():
        plt.show()
    plt.close(figure)
    return path


def check_figure_output(path, flag="--out", force=False, default=None, inputs=()):
    """Check before any work that a figure may be saved at ``path`` (None: ``default``); return the path it will have.

    A name without an extension gets ``.png`` (as matplotlib would add silently); the extension must be one
    matplotlib writes. The rest is lib.files.check_output: ``default`` is the script's own figure (its folder made, a
    rerun replaces it), any other existing file is replaced only with ``force``, and no input is ever the figure.
    """
    from matplotlib.backend_bases import FigureCanvasBase
    from lib.files import check_output
    path = default if path is None else path
    if not path or not path.strip():
        raise ValueError(f"{flag} is empty; give a file name such as results/figure.png")
    if not os.path.basename(path):
        example = os.path.basename(default) if default else "figure.png"
        raise IsADirectoryError(f"{flag} {path} names a folder; give a file name, e.g. {path}{example}")
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if not extension and not os.path.isdir(path):
        path, extension = path + ".png", "png"
    check_output(path, flag, force=force, inputs=inputs, default=default)  # only the default's folder is ever made
    if extension not in formats:
        raise ValueError(f"{flag} {path}: matplotlib cannot write .{extension} files; use one of "
                         f"{', '.join('.' + name for name in sorted(formats))}")
    return path


def _has_display():
    """Whether ``plt.show()`` would open a window: an interactive backend and a screen (or Windows)."""
    backend = matplotlib.get_backend().lower()
    has_screen = os.name == "nt" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return "agg" not in backend and has_screen


# ---- Explicit attention: counting ----------------------------------------------------------------------------------

def plot_counting_attention(weights, digits, predicted, counts, title=None):
    """Heatmaps of the counting model's attention, one panel per sequence.

    Args:
        weights: (samples, vocab_size, sequence_length) attention weights; digits: (samples, sequence_length) the
        input digits; predicted, counts: (samples, vocab_size) predicted and true counts; title: figure title.
    Each panel has a row per digit being counted (its query) and a column per position, labelled with the digit
    there; the predicted and true counts stand beside each row (red where they differ). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    samples, vocab_size, length = weights.shape
    figure, axes = plt.subplots(samples, 1, figsize=(0.6 * length + 3.5, 0.45 * vocab_size * samples + 1.0),
                                squeeze=False, layout="constrained")
    for sample, axis in enumerate(axes[:, 0]):
        values = weights[sample].detach().cpu()
        image = axis.imshow(values.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for digit in range(vocab_size):
            for position in range(length):
                value = values[digit, position].item()
                axis.text(position, digit, f"{value:.2f}", ha="center", va="center", fontsize=6,
                          color="black" if value > 0.6 else "white")
        axis.set_xticks(range(length), [str(int(d)) for d in digits[sample]])
        axis.set_yticks(range(vocab_size), [f"count {d}" for d in range(vocab_size)])
        axis.set_xlabel(f"sequence {sample + 1}: the input digit at each position", fontsize=8)
        for digit in range(vocab_size):
            guess, truth = int(predicted[sample, digit]), int(counts[sample, digit])
            axis.text(length - 0.4, digit, f" predicted {guess}, true {truth}", va="center", fontsize=8,
                      color="black" if guess == truth else "red", clip_on=False)
    figure.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.03, pad=0.02, label="attention weight")
    if title:
        figure.suptitle(title)
    return figure


# ---- Implicit attention: saliency and adversarial examples ---------------------------------------------------------


def _finish_image_rows(figure, axes, title, path, show):
    """Hide the axes of a grid of pictures, add the title, save and show; returns the Figure."""
    for axis in axes.flat:
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    finish_figure(figure, path, show)
    return figure


def _as_image(tensor):
    """(3, H, W) tensor in [0, 1] -> (H, W, 3) numpy array for imshow."""
    return tensor.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()


def show_attention_on_input_image(images, saliency, captions, path=None, show=True, title=None):
    """One row per image: the image, its saliency map, and the map overlaid on the image.

    Args:
        images: (batch, 3, H, W) in [0, 1]; saliency: (batch, H, W) in [0, 1]; captions: one string per image
        (true class, top-3 predictions); title: figure title. Returns the Figure (saved to ``path`` if given).
    """
    import matplotlib.pyplot as plt
    rows = len(images)
    figure, axes = plt.subplots(rows, 3, figsize=(9, 3.1 * rows), squeeze=False)
    for row, (image, heat, caption) in enumerate(zip(images, saliency, captions)):
        picture, heat = _as_image(image), heat.detach().cpu().numpy()
        axes[row, 0].imshow(picture)
        axes[row, 0].set_title(caption, fontsize=8, loc="left")
        shown = axes[row, 1].imshow(heat, cmap="inferno", vmin=0, vmax=1)
        axes[row, 1].set_title("saliency: |d loss / d pixel|", fontsize=8)
        figure.colorbar(shown, ax=axes[row, 1], fraction=0.046, pad=0.02)
        axes[row, 2].imshow(picture)
        axes[row, 2].imshow(heat, cmap="inferno", vmin=0, vmax=1, alpha=0.6)
        axes[row, 2].set_title("overlay", fontsize=8)
    return _finish_image_rows(figure, axes, title, path, show)


def show_adversarial_example(images, adversarial, captions_before, captions_after, path=None, show=True, title=None):
    """One row per image: the original, the perturbation (amplified, factor in the title) and the adversarial image.

    Args:
        images, adversarial: (batch, 3, H, W) in [0, 1]; captions_before, captions_after: one string per image (top-3
        predictions); title: figure title. Returns the Figure (saved to ``path`` if given).
    """
    import matplotlib.pyplot as plt
    rows = len(images)
    figure, axes = plt.subplots(rows, 3, figsize=(9, 3.6 * rows), squeeze=False)
    for row in range(rows):
        delta = (adversarial[row] - images[row]).detach().cpu()
        size = float(delta.abs().max())
        factor = 0.5 / size if size > 0 else 1.0
        axes[row, 0].imshow(_as_image(images[row]))
        axes[row, 0].set_title("original\n" + captions_before[row], fontsize=8, loc="left")
        axes[row, 1].imshow(_as_image(0.5 + factor * delta))
        axes[row, 1].set_title(f"perturbation x{factor:.0f} (grey = 0)\nL-inf {size * 255:.1f}/255", fontsize=8)
        axes[row, 2].imshow(_as_image(adversarial[row]))
        axes[row, 2].set_title("adversarial\n" + captions_after[row], fontsize=8, loc="left")
    return _finish_image_rows(figure, axes, title, path, show)


# ---- Translation: cross-attention heatmaps --------------------------------------------------------------------------


def show_translation_attention(source_pieces, output_pieces, weights, title=""):
    """Heatmaps of cross-attention, one per head: output tokens down, source tokens across.

    weights: (num_heads, len(output_pieces), len(source_pieces)). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    num_heads = weights.shape[0]
    columns = min(num_heads, 2)
    rows = (num_heads + columns - 1) // columns
    width = max(4.0, 0.42 * len(source_pieces) + 1.5)
    height = max(3.0, 0.32 * len(output_pieces) + 1.2)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False,
                                layout="constrained")
    for head, axis in enumerate(axes.flat):
        if head >= num_heads:
            axis.axis("off")
            continue
        image = axis.imshow(weights[head].float().numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axis.set_xticks(range(len(source_pieces)), source_pieces, rotation=70, fontsize=8)
        axis.set_yticks(range(len(output_pieces)), output_pieces, fontsize=8)
        axis.set_title(f"head {head + 1}", fontsize=10)
        axis.set_xlabel("German (source)")
        axis.set_ylabel("English (output)")
    figure.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def show_training_curves(records, title=""):
    """Training and validation loss, validation BLEU and chrF (and, dashed, the second dev set's where records hold
    them) against training minutes, from the records of a run's log.jsonl (dicts with step, minutes, train_loss,
    valid_loss, valid_bleu, valid_chrf, and dev_bleu, dev_chrf with a second dev set). Runs appended to the same
    log (a new run with --init-from starts again at step 0) are drawn end to end, each start marked by a dashed line.
    Returns the Figure."""
    import matplotlib.pyplot as plt
    from lib.training.log import run_minutes
    minutes, starts = run_minutes(records)
    figure, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(11, 4))
    loss_axis.plot(minutes, [record["train_loss"] for record in records], label="training (label-smoothed)")
    loss_axis.plot(minutes, [record["valid_loss"] for record in records], label="validation")
    loss_axis.set_xlabel("training minutes")
    loss_axis.set_ylabel("cross-entropy per token (nats)")
    loss_axis.legend()
    score_axis.plot(minutes, [record["valid_bleu"] for record in records], label="BLEU")
    score_axis.plot(minutes, [record["valid_chrf"] for record in records], label="chrF")
    dev = [(at, record) for at, record in zip(minutes, records) if "dev_bleu" in record]
    if dev:
        for name, line in (("dev_bleu", "BLEU"), ("dev_chrf", "chrF")):
            score_axis.plot([at for at, _ in dev], [record[name] for _, record in dev], linestyle="--",
                            label=f"dev set {line}")
    score_axis.set_xlabel("training minutes")
    score_axis.set_ylabel("validation score (greedy)")
    score_axis.legend()
    for axis in (loss_axis, score_axis):
        axis.grid(alpha=0.3)
        for start in starts:
            axis.axvline(start, color="gray", linestyle="--", linewidth=1)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure


def show_run_comparison(runs, mark_steps=()):
    """Validation loss and BLEU against the optimizer step for several runs (``runs``: label -> the records of its
    log.jsonl), so that runs that shared a machine compare by work done, not by minutes, and a third panel with the
    second dev set's BLEU when a run has it; a dotted line at each of ``mark_steps`` (e.g. where a recipe's second leg
    starts). Returns the Figure."""
    import matplotlib.pyplot as plt
    from lib.training.log import has_dev_scores, records_by_step
    panels = [("valid_loss", "validation loss (nats per token)", "Validation loss"),
              ("valid_bleu", "validation BLEU (greedy)", "Validation BLEU")]
    if has_dev_scores(runs):
        panels.append(("dev_bleu", "dev-set BLEU (greedy)", "Second dev set BLEU"))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
    for label, records in runs.items():
        by_step = records_by_step(records)
        for axis, (name, _, _) in zip(axes, panels):
            steps = sorted(step for step, record in by_step.items() if name in record)
            axis.plot(steps, [by_step[step][name] for step in steps], marker=".", label=label)
    for axis, (_, ylabel, title) in zip(axes, panels):
        axis.set(xlabel="optimizer step", ylabel=ylabel, title=title)
    for axis in axes:
        axis.grid(alpha=0.3)
        for step in mark_steps:
            axis.axvline(step, color="gray", linestyle=":", linewidth=1)
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    return figure
