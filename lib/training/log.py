"""A training run's log (``OUT_DIR/log.jsonl``, one validation record per line) and the comparison of several runs.

A record holds step, epoch, minutes, train_loss, tokens_per_s, valid_loss, valid_bleu and valid_chrf. A run resumed
with ``--resume`` appends to the same log; a new run in the same folder (``--force``) starts a new log.
"""
import json
import os


def read_training_log(out_dir):
    """The records of ``out_dir/log.jsonl`` (or of ``out_dir`` itself when it is a file, e.g. a log kept in docs/),
    in order. Raises FileNotFoundError (no log), ValueError (not a log of this library, or no validation yet) with
    what to do."""
    path = out_dir if os.path.isfile(out_dir) else os.path.join(out_dir, "log.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No training log at {path}: train first, or point at a run's folder.")
    with open(path) as file:
        try:
            records = [json.loads(line) for line in file if line.strip()]
        except ValueError as error:
            raise ValueError(f"{path} is not a training log of this library ({error})") from None
    if not all(isinstance(record, dict) and isinstance(record.get("step"), int) for record in records):
        raise ValueError(f"{path} is not a training log of this library (a line without a step)")
    if not records:
        raise ValueError(f"{path} holds no validations yet: train until the first validation (--eval-every steps)")
    return records


def append_record(out_dir, record):
    """Append one validation record to ``out_dir/log.jsonl``."""
    with open(os.path.join(out_dir, "log.jsonl"), "a") as log:
        log.write(json.dumps(record) + "\n")


def reconcile_log(out_dir, step, records):
    """Make ``out_dir/log.jsonl`` agree with a run resumed at ``step`` whose last.pth holds ``records``: drop the
    trailing lines past ``step`` (validations after the last save, whose steps will be trained again) and append the
    records the log lacks (a run killed between saving last.pth and logging). A log this library did not write is
    left alone. Returns the number of lines dropped."""
    path = os.path.join(out_dir, "log.jsonl")
    try:
        with open(path) as file:
            lines = [line for line in file if line.strip()]
        steps = [json.loads(line)["step"] for line in lines]
    except FileNotFoundError:
        lines, steps = [], []
    except (ValueError, TypeError, KeyError):
        return 0
    kept = len(lines)
    while kept and steps[kept - 1] > step:
        kept -= 1
    logged = steps[kept - 1] if kept else -1
    missing = [json.dumps(record) + "\n" for record in records if logged < record["step"] <= step]
    if kept < len(lines) or missing:
        temporary = path + ".tmp"
        with open(temporary, "w") as file:
            file.writelines(lines[:kept] + missing)
        os.replace(temporary, path)
    return len(lines) - kept


def records_by_step(records):
    """{step: record}; where a step occurs twice (a run resumed from an earlier checkpoint), the later record wins."""
    return {record["step"]: record for record in records}


def comparison_table(runs, metrics=("valid_loss", "valid_bleu")):
    """A Markdown table of several runs at matched steps: ``runs`` maps a label to its records; a row per step that
    any run validated at, a cell per run with its ``metrics`` joined by " / " (empty where that run has no record).
    Returns the table as a string."""
    by_step = {label: records_by_step(records) for label, records in runs.items()}
    steps = sorted({step for records in by_step.values() for step in records})
    lines = ["| step | " + " | ".join(by_step) + " |", "| ---: |" + " ---: |" * len(by_step)]
    for step in steps:
        cells = [" / ".join(f"{records[step][metric]:.2f}" for metric in metrics) if step in records else ""
                 for records in by_step.values()]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_minutes(records):
    """Minutes of training at each record, counted across the runs appended to one log: a record whose step is not
    above the previous one starts a new run, whose minutes are added to those before it.
    Returns (minutes per record, the minutes at which each later run starts)."""
    minutes, starts, offset, previous = [], [], 0.0, None
    for record in records:
        if previous is not None and record.get("step", 0) <= previous["step"]:
            offset += previous["minutes"]
            starts.append(offset)
        minutes.append(offset + record["minutes"])
        previous = record
    return minutes, starts
