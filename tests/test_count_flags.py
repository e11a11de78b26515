"""Every number flag of every script and tool has an upper bound checked at parse time, so that no flag can ask for
memory or time out of proportion (a batch of a million sentences, a billion bootstrap samples). The flags come from
the parsers themselves: a new flag is covered without a new row."""
import argparse
import sys

import pytest

from tests.helpers import SCRIPTS, build_parser, flag_actions

HUGE = "1000000000000"  # 10 ** 12


def number_flags(script):
    """(parser, the options of every flag of ``script`` whose values are numbers)."""
    parser = build_parser(script)
    return parser, [action.option_strings[0] for action in flag_actions(parser)  # lib.cli's int_range / float_range
                    if getattr(action.type, "__name__", "") in ("integer", "number")]


def test_no_number_flag_escapes_the_range_types():
    """A flag typed plain int or float would have no bound: every number flag uses lib.cli's range types."""
    for name in SCRIPTS:
        parser = build_parser(name)
        plain = [action.option_strings[0] for action in flag_actions(parser) if action.type in (int, float)]
        assert plain == [], (name, plain)


CASES = [(name, flag) for name in SCRIPTS for flag in number_flags(name)[1]]


def test_the_sweep_finds_the_number_flags():
    assert ("run_translation", "--beam") in CASES and ("run_translation", "--max-steps") in CASES
    assert ("train", "--steps") in CASES and ("benchmarks/train_speed", "--batch") in CASES and len(CASES) > 60


@pytest.mark.parametrize("name, flag", CASES, ids=[f"{name} {flag}" for name, flag in CASES])
def test_a_huge_value_is_refused_at_parse_time(name, flag):
    parser, _ = number_flags(name)
    action = next(action for action in flag_actions(parser) if flag in action.option_strings)
    with pytest.raises(argparse.ArgumentTypeError, match="must be|at most|from"):
        action.type(HUGE)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
