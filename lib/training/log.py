"""A training run's log (``OUT_DIR/log.jsonl``, one validation record per line) and the comparison of several runs.

A record holds step, epoch, minutes, train_loss, tokens_per_s, valid_loss, valid_bleu and valid_chrf, and with a
second dev set (``--dev-corpus``) dev_bleu and dev_chrf. A run resumed with ``--resume`` appends to the same log; a new
run in the same folder (``--force``) starts a new log.
"""
import json
import math
import os

# The numbers of a validation record besides its whole-number "step": those a comparison of runs needs, and the
# others a run writes (logs kept in docs/ may hold the first alone).
VALIDATION_NUMBERS = ("valid_loss", "valid_bleu", "valid_chrf")
RUN_NUMBERS = ("epoch", "minutes", "train_loss", "tokens_per_s") + VALIDATION_NUMBERS  # in every record a run writes
DEV_NUMBERS = ("dev_bleu", "dev_chrf")  # the second dev set's, in runs that have one
RECORD_NUMBERS = RUN_NUMBERS + DEV_NUMBERS  # checked wherever a record holds them
CURVE_NUMBERS = ("minutes", "train_loss") + VALIDATION_NUMBERS  # what --curves draws


def record_problem(line, required=VALIDATION_NUMBERS):
    """Why one line of a log is not a validation record of this library holding ``required`` (None: it is one)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        at = "" if error.msg.endswith(" at") else " at"  # "Unterminated string starting at"
        return f"it is not JSON ({error.msg}{at} character {error.pos + 1})"
    except (ValueError, RecursionError):  # numbers too long to read, nesting too deep
        return "it is not JSON of a record"
    if not isinstance(record, dict):
        return "it is not a record ({...})"
    if not isinstance(record.get("step"), int) or isinstance(record.get("step"), bool):
        return "it has no whole-number step"
    for name in RECORD_NUMBERS:
        value = record.get(name)
        if name not in record:
            if name in required:
                return f"it has no {name}"
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"its {name} is {value!r}, not a number"
    return None


def read_training_log(out_dir, required=VALIDATION_NUMBERS):
    """The records of ``out_dir/log.jsonl`` (or of ``out_dir`` itself when it is a file, e.g. a log kept in docs/),
    in order, each holding the numbers ``required``. Raises FileNotFoundError (no log), ValueError (a line that is
    not such a record, named by its number, or no validation yet) with what to do."""
    path = out_dir if os.path.isfile(out_dir) else os.path.join(out_dir, "log.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No training log at {path}: train first, or point at a run's folder.")
    try:
        with open(path, encoding="utf-8") as file:
            numbered = [(number, line) for number, line in enumerate(file, 1) if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a training log of this library (it is not UTF-8 text)") from None
    records = []
    for number, line in numbered:
        problem = record_problem(line, required)
        if problem:
            cut = number == numbered[-1][0] and not line.endswith("\n")
            advice = ("it was cut short while being written: --resume repairs the log from the run's last.pth"
                      if cut else "a training log holds one validation record per line")
            raise ValueError(f"{path} line {number} is not a validation record of this library: {problem}; {advice}")
        records.append(json.loads(line))
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
    records the log lacks (a run killed between saving last.pth and logging). A log with a line that is not a record
    (cut short by a kill) is written anew from ``records``. Returns one line saying what was changed, or None."""
    path = os.path.join(out_dir, "log.jsonl")
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = [line for line in file if line.strip()]
    except FileNotFoundError:
        lines = []
    kept_records = [json.dumps(record) + "\n" for record in records if record["step"] <= step]
    broken = [number for number, line in enumerate(lines, 1)
              if record_problem(line, RUN_NUMBERS) or not line.endswith("\n")]
    if broken:
        _write_lines(path, kept_records)
        return (f"{path}: line {broken[0]} was cut short or is not a record, so the log was written anew from the "
                f"{len(kept_records)} record(s) that last.pth holds")
    steps = [json.loads(line)["step"] for line in lines]
    kept = len(lines)
    while kept and steps[kept - 1] > step:
        kept -= 1
    logged = steps[kept - 1] if kept else -1
    missing = [json.dumps(record) + "\n" for record in records if logged < record["step"] <= step]
    if kept < len(lines) or missing:
        _write_lines(path, lines[:kept] + missing)
    if kept < len(lines):
        return (f"{path}: {len(lines) - kept} line(s) after step {step} of last.pth dropped (those steps are "
                "trained again)")
    return None


def write_records(path, records):
    """Write ``records`` as a log (one JSON record per line) to ``path``, whole or not at all."""
    _write_lines(path, [json.dumps(record) + "\n" for record in records])


def records_with_scores(records, scores, log_path):
    """Copies of ``records`` in which the record of each step in ``scores`` ({step: (BLEU, chrF)} of the second dev
    set) holds them as dev_bleu / dev_chrf, rounded as a run rounds them (a step validated twice: its later record).
    A step the log has no record of is a ValueError naming ``log_path``."""
    last = {record["step"]: index for index, record in enumerate(records)}
    missing = sorted(set(scores) - set(last))
    if missing:
        raise ValueError(f"{log_path} has no record of step(s) {', '.join(map(str, missing))}: the snapshots are of "
                         "another run, or the log is of a part of this one")
    scored = {last[step]: {"dev_bleu": round(bleu, 2), "dev_chrf": round(chrf, 2)}
              for step, (bleu, chrf) in scores.items()}
    return [dict(record, **scored.get(index, {})) for index, record in enumerate(records)]


def _write_lines(path, lines):
    """Replace ``path`` with ``lines`` (written whole or not at all)."""
    from lib.files import atomic_output
    with atomic_output(path) as file:
        file.writelines(lines)


def records_by_step(records):
    """{step: record}; where a step occurs twice (a run resumed from an earlier checkpoint), the later record wins."""
    return {record["step"]: record for record in records}


def has_dev_scores(runs):
    """Whether any record of ``runs`` (label -> records) holds the second dev set's BLEU."""
    return any("dev_bleu" in record for records in runs.values() for record in records)


def comparison_table(runs, metrics=None):
    """A Markdown table of several runs at matched steps: ``runs`` maps a label to its records; a row per step that
    any run validated at, a cell per run with its ``metrics`` joined by " / " (empty where that run has no record,
    "-" for a metric a record lacks). ``metrics`` None: validation loss and BLEU, and the second dev set's BLEU when
    a run has it. Returns the table as a string."""
    if metrics is None:
        metrics = ("valid_loss", "valid_bleu") + (("dev_bleu",) if has_dev_scores(runs) else ())
    by_step = {label: records_by_step(records) for label, records in runs.items()}
    steps = sorted({step for records in by_step.values() for step in records})
    lines = ["| step | " + " | ".join(by_step) + " |", "| ---: |" + " ---: |" * len(by_step)]
    for step in steps:
        cells = [" / ".join(f"{records[step][metric]:.2f}" if metric in records[step] else "-" for metric in metrics)
                 if step in records else "" for records in by_step.values()]
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
