"""Figures: counting attention heatmaps, saliency maps, adversarial examples, translation cross-attention.

Every function returns the matplotlib Figure; ``finish_figure`` saves it and shows it where a display exists.
"""
import os

import matplotlib


def finish_figure(figure, path=None, show=True):
    """Save ``figure`` to ``path`` (folders created) and show it when a display exists. Returns ``path``."""
    import matplotlib.pyplot as plt
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        figure.savefig(path, dpi=120, bbox_inches="tight")
    if show and _has_display():
        plt.show()
    plt.close(figure)
    return path


def _has_display():
    backend = matplotlib.get_backend().lower()
    return "agg" not in backend and (os.name == "nt" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))


# ---- Explicit attention: counting ----------------------------------------------------------------------------------


# ---- Implicit attention: saliency and adversarial examples ---------------------------------------------------------


# ---- Translation: cross-attention heatmaps --------------------------------------------------------------------------
