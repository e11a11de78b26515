"""German-to-English translation with the exercise's Transformer.

``translator`` (``Translator``: a trained model with its vocabularies; translate, evaluate, save, load, average),
``corpus`` (the Ding dictionary, the shipped held-out splits, other corpora, the held-out and everyday filters),
``inputs`` (text to translate from a file or standard input, checked first), ``tokenizer`` (SentencePiece subwords),
``decoding`` (greedy and beam search with a key/value cache), ``noising`` (word dropout), ``significance`` (paired
bootstrap of BLEU and chrF), ``commands`` (the bodies of run_translation.py's commands and their checks).
"""
