"""Training a translator.

``config`` (``TrainConfig``: every setting, its range and help), ``data`` (batches from the corpus and extra text),
``loop`` (the training loop, validation, checkpoints), ``log`` (the run's log.jsonl), ``run_folder`` (the run's folder
and its lock), ``distributed`` (data parallel under torchrun).
"""
