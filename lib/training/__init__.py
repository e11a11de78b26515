"""Training a translator.

``config`` (``TrainConfig``: every setting, its range and help, and the flags made from them), ``data`` (batches from
the corpus and extra text, the held-out and everyday sentences left out), ``loop`` (the step, validation and the loop),
``state`` (what a run carries, saved to and restored from last.pth), ``stopping`` (why and how a run ends: limits, a
STOP file, signals, a non-finite loss), ``log`` (the run's log.jsonl), ``run_folder`` (the run's folder and its lock),
``distributed`` (data parallel under torchrun).
"""
