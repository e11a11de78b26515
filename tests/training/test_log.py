"""lib.training.log (reading a run's log.jsonl, the comparison table) and tools/compare_runs.py."""
import importlib.util
import json
import os
import re

import pytest

from lib.training.log import comparison_table, read_training_log, reconcile_log, records_by_step

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_log(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return folder


def record(step, loss, bleu):
    return {"step": step, "minutes": step / 40, "train_loss": loss + 1, "valid_loss": loss, "valid_bleu": bleu,
            "valid_chrf": 20.0}


def test_the_table_matches_runs_by_step_and_leaves_missing_cells_empty():
    runs = {"base": [record(250, 4.704, 0.35), record(500, 4.126, 0.754)],
            "tied": [record(250, 5.25, 0.0), record(500, 4.45, 0.59), record(750, 4.09, 0.92)]}
    assert comparison_table(runs).splitlines() == [
        "| step | base | tied |",
        "| ---: | ---: | ---: |",
        "| 250 | 4.70 / 0.35 | 5.25 / 0.00 |",
        "| 500 | 4.13 / 0.75 | 4.45 / 0.59 |",
        "| 750 |  | 4.09 / 0.92 |"]
    assert comparison_table(runs, metrics=("valid_chrf",)).splitlines()[2] == "| 250 | 20.00 | 20.00 |"


def test_the_dev_set_bleu_is_a_column_where_a_run_has_it_and_a_dash_where_a_record_lacks_it():
    with_dev = [dict(record(250, 4.0, 1.0), dev_bleu=7.125, dev_chrf=30.0), record(500, 3.9, 1.5)]
    runs = {"new": with_dev, "old": [record(250, 4.2, 0.5)]}
    assert comparison_table(runs).splitlines()[2:] == ["| 250 | 4.00 / 1.00 / 7.12 | 4.20 / 0.50 / - |",
                                                       "| 500 | 3.90 / 1.50 / - |  |"]
    assert comparison_table({"old": runs["old"]}).splitlines()[2] == "| 250 | 4.20 / 0.50 |"


def test_a_step_validated_twice_keeps_the_later_record():
    # a run resumed from a checkpoint older than its last validation validates that step again
    records = [record(250, 5.0, 1.0), record(500, 4.0, 2.0), record(500, 3.9, 2.5)]
    assert records_by_step(records)[500]["valid_bleu"] == 2.5
    assert comparison_table({"run": records}).splitlines()[3] == "| 500 | 3.90 / 2.50 |"


def test_reading_a_log_and_its_errors(tmp_path):
    records = [record(250, 5.0, 1.0), record(500, 4.0, 2.0)]
    assert read_training_log(write_log(tmp_path / "good", records)) == records
    assert read_training_log(tmp_path / "good" / "log.jsonl") == records  # a log file kept elsewhere
    with pytest.raises(FileNotFoundError, match="No training log at .*missing"):
        read_training_log(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "log.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="holds no validations yet"):
        read_training_log(tmp_path / "empty")


GOOD = json.dumps(record(250, 5.0, 1.0)) + "\n"
# (the log's text, the line named, what is wrong with it, the advice)
BAD_LOGS = [
    ("not json\n", 1, r"it is not JSON \(Expecting value at character 1\)", "one validation record per line"),
    (GOOD + "[1, 2]\n", 2, r"it is not a record", "one validation record per line"),
    (GOOD + '{"step": 1}\n', 2, "it has no valid_loss", "one validation record per line"),
    (GOOD + '{"step": "1", "valid_loss": 1}\n', 2, "it has no whole-number step", "per line"),
    (GOOD + GOOD.replace("5.0", '"x"'), 2, "its valid_loss is 'x', not a number", "per line"),
    (GOOD + GOOD.replace("5.0", "NaN"), 2, "its valid_loss is nan, not a number", "per line"),
    (GOOD + GOOD.replace("}", ', "dev_bleu": null}'), 2, "its dev_bleu is None, not a number", "per line"),
    (GOOD + "\n" + "[" * 100000 + "]" * 100000 + "\n", 3, "it is not JSON of a record", "per line"),
    (GOOD + GOOD + GOOD[:40], 3, "it is not JSON", r"it was cut short while being written: --resume repairs the log"),
]


@pytest.mark.parametrize("text, line, problem, advice", BAD_LOGS, ids=[row[2][:30] for row in BAD_LOGS])
def test_a_bad_line_is_named_by_its_number_with_what_is_wrong(tmp_path, text, line, problem, advice):
    (tmp_path / "log.jsonl").write_text(text)
    with pytest.raises(ValueError, match=rf"log.jsonl line {line} is not a validation record of this library: "
                                         rf"{problem}.*; .*{advice}"):
        read_training_log(tmp_path)


def run_record(step):
    """A record as a run writes it (every number)."""
    return {"step": step, "epoch": 0, "minutes": 0.1, "train_loss": 4.0, "tokens_per_s": 100, "valid_loss": 3.0,
            "valid_bleu": 1.0, "valid_chrf": 20.0}


SAVED = [run_record(4), run_record(8)]  # the records of a last.pth at step 8
WHOLE = "".join(json.dumps(record) + "\n" for record in SAVED)
# (the log's text before a resume at step 8, what is said (None: nothing))
LOGS_ON_RESUME = [
    (WHOLE, None),
    (None, None),  # no log: written from last.pth
    (WHOLE.splitlines(keepends=True)[0], None),  # killed between saving last.pth and logging: the record appended
    (WHOLE + json.dumps(run_record(12)) + "\n", r"1 line\(s\) after step 8 of last.pth dropped"),
    (WHOLE + WHOLE[:30], r"line 3 was cut short or is not a record, so the log was written anew from the 2 record"),
    (WHOLE[:-1], r"line 2 was cut short"),  # the record whole, its line end not written
    ("not json\n" + WHOLE, r"line 1 was cut short or is not a record"),
    (WHOLE.replace("3.0", '"x"', 1), r"line 1 was cut short or is not a record"),
]


@pytest.mark.parametrize("text, said", LOGS_ON_RESUME, ids=[str(row[1])[:25] for row in LOGS_ON_RESUME])
def test_a_resume_leaves_a_log_of_the_records_last_pth_holds(tmp_path, text, said):
    if text is not None:
        (tmp_path / "log.jsonl").write_text(text)
    note = reconcile_log(tmp_path, 8, SAVED)
    assert note is None if said is None else re.fullmatch(rf"{re.escape(str(tmp_path))}/log.jsonl: .*{said}.*", note)
    assert read_training_log(tmp_path) == SAVED
    assert (tmp_path / "log.jsonl").read_text() == WHOLE


def test_a_log_kept_with_the_validations_alone_reads_and_the_curves_ask_for_the_rest(tmp_path):
    from lib.training.log import CURVE_NUMBERS
    (tmp_path / "log.jsonl").write_text('{"step": 5, "valid_loss": 3.3, "valid_bleu": 6.9, "valid_chrf": 27.0}\n')
    assert read_training_log(tmp_path)[0]["valid_bleu"] == 6.9
    with pytest.raises(ValueError, match="line 1 .*: it has no minutes"):
        read_training_log(tmp_path, required=CURVE_NUMBERS)


def load_tool():
    spec = importlib.util.spec_from_file_location("compare_runs", os.path.join(ROOT, "tools", "compare_runs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_runs_prints_the_table_and_saves_the_figure(tmp_path, capsys):
    tool = load_tool()
    first = write_log(tmp_path / "screen_a", [record(250, 5.0, 1.0), record(500, 4.0, 2.0)])
    second = write_log(tmp_path / "b", [record(250, 4.5, 1.5)])
    figure = tmp_path / "figures" / "comparison.png"
    (tmp_path / "figures").mkdir()
    assert tool.parse_run(str(tmp_path / "logs" / "tied.jsonl")) == ("tied", str(tmp_path / "logs" / "tied.jsonl"))
    args = tool.build_parser().parse_args([str(first), f"word dropout={second}", "--figure", str(figure),
                                           "--mark-step", "250", "--no-show"])
    table = tool.main(args)
    out = capsys.readouterr().out
    assert table.splitlines()[0] == "| step | screen_a | word dropout |"
    assert table.splitlines()[2] == "| 250 | 5.00 / 1.00 | 4.50 / 1.50 |"
    assert table in out and f"Curves saved to {figure}" in out
    assert figure.stat().st_size > 10_000
    with pytest.raises(ValueError, match="two runs are labelled 'x'"):
        tool.main(tool.build_parser().parse_args([f"x={first}", f"x={second}", "--figure", str(figure)]))
