"""Attention, implicit and explicit: a small PyTorch reference library.

Modules: ``attention`` (sigmoid/softmax scaled dot-product attention), ``counting`` (the digit-counting model and its
data), ``utils`` (input gradients), ``vision`` (an offline ImageNet classifier), ``adversarial`` (FGSM, PGD),
``transformer`` (the German-English Transformer), ``plot`` (figures). Importing any of them has no side effects.
"""
