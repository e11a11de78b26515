"""Implicit attention: what an ImageNet classifier looks at, read from its input gradient.

``vision`` (the offline EfficientNet-Lite0 classifier and its image preprocessing), ``saliency`` (gradient and
SmoothGrad saliency maps), ``adversarial`` (FGSM and PGD adversarial examples), ``image_cli`` (what the image scripts
share: reading images, flags, summaries).
"""
