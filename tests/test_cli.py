"""lib/cli.py: the checked argparse types and the one way scripts end on bad input or a stop."""
import argparse
import os
import signal
import subprocess
import sys
import time

import pytest

from lib.cli import KEPT, STOPS_DEFERRED, FlagTable, device_name, float_range, int_range, run_main
from lib.files import REPOSITORY
from tests.helpers import SCRIPTS


@pytest.mark.parametrize("text, expected", [("1", 1), ("7", 7), ("10", 10)])
def test_int_range_accepts_values_inside(text, expected):
    assert int_range(1, 10)(text) == expected


@pytest.mark.parametrize("text, message", [("0", "from 1 to 10, got 0"), ("11", "from 1 to 10, got 11"),
                                           ("1.5", "'1.5' is not a whole number"), ("x", "'x' is not a whole")])
def test_int_range_refuses_values_outside_with_the_bound(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        int_range(1, 10)(text)


def test_int_range_without_upper_bound():
    assert int_range(0)("123456789") == 123456789
    with pytest.raises(argparse.ArgumentTypeError, match="at least 0, got -1"):
        int_range(0)("-1")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN"])
def test_float_range_refuses_non_finite(text):
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        float_range()(text)


def test_float_range_open_and_closed_ends():
    positive = float_range(0, low_open=True)
    assert positive("1e-9") == 1e-9
    with pytest.raises(argparse.ArgumentTypeError, match="above 0, got 0"):
        positive("0")
    probability = float_range(0, 1, high_open=True)
    assert probability("0") == 0.0
    with pytest.raises(argparse.ArgumentTypeError, match="at least 0 and below 1, got 1"):
        probability("1")


def test_parser_reports_the_flag_and_the_bound(capsys):
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--lr", type=float_range(0, low_open=True))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--lr", "-1"])
    assert exit_info.value.code == 2
    assert "argument --lr: must be above 0, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("text, ok", [("cpu", True), ("cuda", True), ("cuda:0", True), ("cuda:12", True),
                                      ("gpu", False), ("cuda:", False), ("cuda:x", False), ("CPU", False), ("", False)])
def test_device_name_is_cpu_cuda_or_cuda_n(text, ok):
    if ok:
        assert device_name(text) == text
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be cpu, cuda or cuda:N, got {text!r}"):
            device_name(text)


def flag_table_parser():
    table = FlagTable()
    parser = argparse.ArgumentParser(prog="demo", argument_default=argparse.SUPPRESS)
    group = parser.add_argument_group("things")
    table.add(group, "--plot", action="store_true", default=False)
    table.add(group, "--batch-size", type=int_range(1), default=64)
    table.add(group, "--max-steps", type=int_range(1))  # no default: absent unless given
    table.add(parser, "--amp", action=argparse.BooleanOptionalAction, default=None)
    return table, parser


def test_flag_table_tells_the_flags_given_in_the_order_added_and_fills_in_the_defaults():
    table, parser = flag_table_parser()
    args, given = table.parse(parser, ["--max-step", "5", "--no-amp", "--plot"])  # abbreviated
    assert given == {"plot": "--plot", "max_steps": "--max-steps", "amp": "--amp"}
    assert vars(args) == {"plot": True, "max_steps": 5, "amp": False, "batch_size": 64}
    args, given = table.parse(parser, ["--batch-size", "64"])  # given with the default's value: still given
    assert given == {"batch_size": "--batch-size"} and vars(args) == {"batch_size": 64, "plot": False, "amp": None}
    args, given = table.parse(parser, [])
    assert given == {} and vars(args) == {"plot": False, "batch_size": 64, "amp": None}


def test_run_main_turns_user_errors_into_one_line(capsys):
    def failing(args):
        raise ValueError("bad value for --thing; use a positive number")
    with pytest.raises(SystemExit) as exit_info:
        run_main(failing, None)
    assert exit_info.value.code == "error: bad value for --thing; use a positive number"


def test_run_main_returns_the_result_and_lets_bugs_through():
    assert run_main(lambda args: args + 1, 1) == 2
    with pytest.raises(KeyError):
        run_main(lambda args: {}["missing"], None)


DEFAULT_KEPT = "no file was left half written (outputs are written whole or not at all)"


@pytest.mark.parametrize("kept", [None, "the 3 lines translated so far were written"])
def test_run_main_ctrl_c_exits_130_saying_what_the_command_kept(kept, capsys):
    def interrupted(args):
        if kept:
            KEPT.text = kept
        raise KeyboardInterrupt
    KEPT.text = "left over from an earlier script"
    with pytest.raises(SystemExit) as exit_info:
        run_main(interrupted, None)
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == f"interrupted: {kept or DEFAULT_KEPT}\n"


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_run_main_ends_on_a_termination_signal_as_on_ctrl_c_and_restores_the_handler(name, code, capsys):
    signum = getattr(signal, name)
    cleaned = []

    def stopped(args):
        try:
            os.kill(os.getpid(), signum)
            time.sleep(10)  # the signal arrives first
        finally:
            cleaned.append(True)  # finally blocks run: a temporary output is removed
    with pytest.raises(SystemExit) as exit_info:
        run_main(stopped, None)
    assert exit_info.value.code == code and cleaned == [True]
    assert capsys.readouterr().err == f"stopped by {name}: {DEFAULT_KEPT}\n"
    assert signal.getsignal(signum) is signal.SIG_DFL


@pytest.mark.parametrize("name, code, how", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "stopped by SIGTERM")])
def test_a_stop_during_a_deferred_block_comes_after_the_block_has_counted_its_output(name, code, how, capsys):
    """Written and counted together: a stop between the write and the count would report one line too few."""
    signum = getattr(signal, name)
    steps = []

    def writes_and_counts(args):
        with STOPS_DEFERRED:
            os.kill(os.getpid(), signum)  # arrives while the block runs
            time.sleep(0.2)
            steps.append("written")
            KEPT.text = "the 1 line translated so far was written"
        steps.append("after the block")  # never reached: the stop takes effect at the block's end
    with pytest.raises(SystemExit) as exit_info:
        run_main(writes_and_counts, None)
    assert exit_info.value.code == code and steps == ["written"]
    assert capsys.readouterr().err == f"{how}: the 1 line translated so far was written\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and STOPS_DEFERRED.depth == 0


WAITING_SCRIPT = """import sys, time
sys.path.insert(0, %r)
from lib.cli import KEPT, run_main
def main(args):
    KEPT.text = "the 2 lines translated so far were written"
    print("waiting", flush=True)
    time.sleep(60)
run_main(main, None)
""" % REPOSITORY


@pytest.mark.parametrize("name, how", [("SIGINT", "interrupted"), ("SIGTERM", "stopped by SIGTERM"),
                                       ("SIGHUP", "stopped by SIGHUP")])
def test_a_script_sent_a_stop_signal_while_it_runs_ends_in_one_line_saying_what_was_kept(name, how):
    signum = getattr(signal, name)
    process = subprocess.Popen([sys.executable, "-c", WAITING_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline() == "waiting\n"
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + signum
    assert err == f"{how}: the 2 lines translated so far were written\n"


def test_a_script_error_is_one_line_on_stderr():
    code = ("import sys; sys.path.insert(0, %r); from lib.cli import run_main\n"
            "def main(args): raise FileNotFoundError('No corpus at /x: install trans-de-en')\n"
            "run_main(main, None)" % REPOSITORY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "error: No corpus at /x: install trans-de-en\n"


def test_a_reader_that_stops_early_ends_the_script_quietly():
    # `script | head -1`: the pipe closes after one line; the script must not print an error or a traceback
    code = ("import sys; sys.path.insert(0, '.'); from lib.cli import run_main\n"
            "def main(args):\n"
            "    for i in range(200000):\n"
            "        print('line', i)\n"
            "run_main(main, None)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    reader = subprocess.run(["bash", "-c", f"{sys.executable} -c \"{code}\" | head -1; echo \"${{PIPESTATUS[0]}}\""],
                            capture_output=True, text=True, cwd=root, timeout=60)
    assert reader.stdout.splitlines() == ["line 0", "1"]
    assert reader.stderr == ""


def test_the_scripts_swept_are_found_in_the_repository():
    assert {"run_translation", "train", "plot_attention", "tools/compare_runs", "tools/score_snapshots",
            "benchmarks/train_speed"} <= set(SCRIPTS)
    assert all(os.path.isfile(os.path.join(REPOSITORY, script + ".py")) for script in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_and_tool_ends_through_run_main(script):
    """One way to end: bad input in one line, a stop saying what was kept (the scripts' main blocks, read as code)."""
    import ast
    with open(os.path.join(REPOSITORY, script + ".py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    main_block = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
    assert len(main_block) == 1 and "run_main(main, " in ast.unparse(main_block[0]), script
