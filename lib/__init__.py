"""Attention, implicit and explicit: a small PyTorch reference library.

The exercise's modules: ``utils`` (the input gradient, ``calculate_jacobian``), ``attention`` (sigmoid / softmax
scaled dot-product attention), ``counting`` (the digit-counting model and its data), ``transformer`` (the
German-English Transformer), ``plot`` (figures). Shared plumbing: ``cli`` (argparse types and the scripts' error
handling), ``checkpoint`` (atomic saving, safe loading).

The parts, one package each: ``implicit`` (saliency and adversarial examples on an ImageNet classifier),
``translation`` (the translator, its corpus, tokenizer and decoding), ``training`` (training a translator), ``explorer``
(the attention explorer web page), ``debian_corpus`` (a parallel corpus from Debian's translations). Importing any of
them has no side effects.
"""
