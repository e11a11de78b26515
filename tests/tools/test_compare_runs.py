"""tools/compare_runs.py: each row as (runs, exit code, a fragment of what is printed), and its path flags through
lib/files.py (standard input as a run, a figure that would replace a run's log)."""
import importlib.util
import io
import os
import re
import sys

import pytest

from lib.files import REPOSITORY
from tests.helpers import cli_outcome


def load_tool(name):
    """The module tools/NAME.py."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPOSITORY, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOOD_LINE = '{"step": 4, "minutes": 0.1, "valid_loss": 3.0, "valid_bleu": 1.0, "valid_chrf": 5.0}\n'
# Logs whose second line is not a validation record: (file name, that line)
BAD_LOGS = {"step alone.jsonl": '{"step": 1}\n', "text loss.jsonl": '{"step": 1, "valid_loss": "x"}\n',
            "text bleu.jsonl": GOOD_LINE.replace("1.0", '"x"'), "step 1.5.jsonl": GOOD_LINE.replace("4", "1.5"),
            "a list.jsonl": "[1]\n", "cut short.jsonl": GOOD_LINE[:30]}
ONE_PER_LINE = "a training log holds one validation record per line"


def run_logs(folder):
    """Two runs' folders with a log each, one of them with '=' in a folder's name; and the BAD_LOGS files."""
    for name, bleu in (("a=b/run", 1.0), ("plain", 2.0)):
        (folder / name).mkdir(parents=True)
        (folder / name / "log.jsonl").write_text(GOOD_LINE.replace("1.0", str(bleu)))
    for name, line in BAD_LOGS.items():
        (folder / name).write_text(GOOD_LINE + line)


COMPARE_ROWS = [
    ("an existing path whose name holds '='", ["{tmp}/a=b/run", "{tmp}/plain"], 0, r"\| step \| run \| plain \|"),
    ("LABEL=PATH still works", ["first={tmp}/a=b/run", "{tmp}/plain"], 0, r"\| step \| first \| plain \|"),
    ("an empty label", ["={tmp}/plain"], 1, r"error: RUN '=.*plain' has an empty label: write LABEL=PATH, or the "
                                            r"PATH alone"),
    ("an empty path", ["label="], 1, r"error: RUN 'label=' has an empty path"),
    ("a path that is missing", ["{tmp}/none"], 1, r"error: No training log at .*none/log.jsonl"),
    *[(f"a log line: {problem}", ["{tmp}/plain", f"{{tmp}}/{name}"], 1,
       rf"^error: .*/{name} line 2 is not a validation record of this library: {problem}; {advice}\n?$")
      for name, problem, advice in [
          ("step alone.jsonl", "it has no valid_loss", ONE_PER_LINE),
          ("text loss.jsonl", "its valid_loss is 'x', not a number", ONE_PER_LINE),
          ("text bleu.jsonl", "its valid_bleu is 'x', not a number", ONE_PER_LINE),
          ("step 1.5.jsonl", "it has no whole-number step", ONE_PER_LINE),
          ("a list.jsonl", r"it is not a record \(\{...\}\)", ONE_PER_LINE),
          ("cut short.jsonl", r"it is not JSON \(Unterminated string starting at character 29\)",
           "it was cut short while being written: --resume repairs the log from the run's last.pth")]],
]


@pytest.mark.parametrize("name, runs, code, message", COMPARE_ROWS, ids=[row[0] for row in COMPARE_ROWS])
def test_compare_runs_rows(name, runs, code, message, tmp_path, capsys):
    compare_runs = load_tool("compare_runs")
    run_logs(tmp_path)
    flags = [run.format(tmp=tmp_path) for run in runs] + ["--no-show", "--figure", str(tmp_path / "runs.png")]
    got, printed = cli_outcome(compare_runs.build_parser().parse_args, compare_runs.main, flags, capsys)
    assert got == code and re.search(message, printed) and "Traceback" not in printed, printed
    if code:
        assert printed.strip().count("\n") == 0, printed


def test_a_run_read_from_standard_input(tmp_path, capsys, monkeypatch):
    compare_runs = load_tool("compare_runs")
    run_logs(tmp_path)
    log = (tmp_path / "plain" / "log.jsonl").read_text()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(log.encode())))
    flags = ["piped=-", "--no-show", "--figure", str(tmp_path / "runs.png")]
    got, printed = cli_outcome(compare_runs.build_parser().parse_args, compare_runs.main, flags, capsys)
    assert got == 0 and "| step | piped |" in printed, printed


def test_a_figure_that_would_replace_a_runs_log_is_refused(tmp_path, capsys):
    compare_runs = load_tool("compare_runs")
    run_logs(tmp_path)
    log = tmp_path / "plain" / "log.jsonl"
    before = log.read_text()
    flags = [f"mine={log}", "--no-show", "--figure", str(log)]
    got, printed = cli_outcome(compare_runs.build_parser().parse_args, compare_runs.main, flags, capsys)
    assert got == 1 and "is also an input" in printed and log.read_text() == before


def test_every_number_flag_has_an_upper_bound():
    parser = load_tool("compare_runs").build_parser()
    flags = [action.option_strings[0] for action in parser._actions
             if getattr(action.type, "__name__", "") in ("integer", "number") and action.option_strings]
    assert flags == ["--mark-step"]
    for flag in flags:
        with pytest.raises(SystemExit):
            parser.parse_args(["run", flag, str(10 ** 15)])
