"""Every number flag of every script and tool has an upper bound checked at parse time, so that no flag can ask for
memory or time out of proportion (a batch of a million sentences, a billion bootstrap samples). The flags come from
the parsers themselves: a new flag is covered without a new row."""
import argparse
import importlib.util
import os
import sys

import pytest

from lib.files import REPOSITORY

SCRIPTS = ["run_translation", "train", "plot_attention", "plot_attention_on_input", "plot_adversarial_example",
           "tools/build_parallel_corpus", "tools/compare_runs", "tools/sweep_decoding", "benchmarks/counting_speed",
           "benchmarks/ddp_speed", "benchmarks/decode_speed", "benchmarks/saliency_speed", "benchmarks/train_speed",
           "benchmarks/translate_file_speed", "benchmarks/translate_precision"]
HUGE = "1000000000000"  # 10 ** 12


def build_parser(script):
    """The parser of ``script`` (a path below the repository without .py), loaded from its file: a package of
    another project may own the name benchmarks."""
    spec = importlib.util.spec_from_file_location(script.replace("/", "_"), os.path.join(REPOSITORY, script + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


def number_flags(script):
    """(parser, the options of every flag of ``script`` whose values are numbers)."""
    parser = build_parser(script)
    flags = []
    for group in parser._action_groups:  # argparse offers no public list of a parser's flags
        for action in group._group_actions:
            if action.option_strings and getattr(action.type, "__name__", "") in ("integer", "number"):
                flags.append(action.option_strings[0])  # lib.cli's int_range / float_range
    return parser, flags


def test_no_number_flag_escapes_the_range_types():
    """A flag typed plain int or float would have no bound: every number flag uses lib.cli's range types."""
    for name in SCRIPTS:
        parser = build_parser(name)
        plain = [action.option_strings[0] for group in parser._action_groups for action in group._group_actions
                 if action.option_strings and action.type in (int, float)]
        assert plain == [], (name, plain)


CASES = [(name, flag) for name in SCRIPTS for flag in number_flags(name)[1]]


def test_the_sweep_finds_the_number_flags():
    assert ("run_translation", "--beam") in CASES and ("run_translation", "--max-steps") in CASES
    assert ("train", "--steps") in CASES and ("benchmarks/train_speed", "--batch") in CASES and len(CASES) > 60


@pytest.mark.parametrize("name, flag", CASES, ids=[f"{name} {flag}" for name, flag in CASES])
def test_a_huge_value_is_refused_at_parse_time(name, flag):
    parser, _ = number_flags(name)
    action = next(action for group in parser._action_groups for action in group._group_actions
                  if flag in action.option_strings)
    with pytest.raises(argparse.ArgumentTypeError, match="must be|at most|from"):
        action.type(HUGE)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
