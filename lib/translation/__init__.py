"""German-to-English translation with the exercise's Transformer.

``translator`` (``Translator``: a trained model with its vocabularies; translate, evaluate, save, load, average),
``corpus`` (the Ding dictionary and other corpora, held-out splits), ``tokenizer`` (SentencePiece subwords),
``decoding`` (greedy and beam search with a key/value cache), ``noising`` (word dropout), ``significance`` (paired
bootstrap of BLEU and chrF).
"""
