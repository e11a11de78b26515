"""Tests of lib/checks.py, the one way to check a value's range: each case's message is written out by hand."""
import math
import sys
from fractions import Fraction

import numpy
import pytest

from lib.checks import Allowed, check_probability, check_range, check_stored, range_problem, shown, stored_problems

# (value, range_problem's arguments after the value, the message or None)
CASES = [
    # closed ends
    (5, dict(low=1, high=10), None),
    (1, dict(low=1, high=10), None),
    (10, dict(low=1, high=10), None),
    (0.5, dict(low=1, high=10), "must be at least 1 and at most 10, got 0.5"),
    (10.25, dict(low=1, high=10), "must be at least 1 and at most 10, got 10.25"),
    (-3, dict(low=0), "must be at least 0, got -3"),
    (1e9, dict(low=0), None),
    (7, dict(high=5), "must be at most 5, got 7"),
    (-1e9, dict(high=5), None),
    # open ends: the bound itself is refused, the nearest float beside it accepted
    (0.0, dict(low=0.0, low_open=True), "must be above 0, got 0"),
    (5e-324, dict(low=0.0, low_open=True), None),
    (1.0, dict(low=0.0, high=1.0, high_open=True), "must be at least 0 and below 1, got 1"),
    (math.nextafter(1.0, 0.0), dict(low=0.0, high=1.0, high_open=True), None),
    (-0.5, dict(low=-0.5, high=0.5, low_open=True, high_open=True), "must be above -0.5 and below 0.5, got -0.5"),
    (0.0, dict(low=-0.5, high=0.5, low_open=True, high_open=True), None),
    (2.5, dict(low=-10.0, high=10.0), None),
    (1e308, dict(low=-10.0, high=10.0), "must be at least -10 and at most 10, got 1e+308"),
    # no bounds: any finite number
    (-1e308, dict(), None),
    (0, dict(), None),
    # not finite
    (math.nan, dict(low=0.0), "must be a finite number, got nan"),
    (math.nan, dict(), "must be a finite number, got nan"),
    (math.inf, dict(low=0.0), "must be a finite number, got inf"),
    (-math.inf, dict(high=0.0), "must be a finite number, got -inf"),
    # not numbers; bools are not numbers here
    (True, dict(), "must be a number, got True"),
    (False, dict(low=0, high=1), "must be a number, got False"),
    ("3", dict(low=0), "must be a number, got '3'"),
    (None, dict(), "must be a number, got None"),
    (1 + 2j, dict(), "must be a number, got (1+2j)"),
    # other real number types
    (Fraction(1, 2), dict(low=0, high=1), None),
    (numpy.float32(0.25), dict(low=0.0, high=1.0), None),
    (numpy.float64(2.0), dict(low=0.0, high=1.0), "must be at least 0 and at most 1, got 2"),
    # whole numbers beyond floats
    (10 ** 400, dict(low=0.0, high=1.0), "must be at least 0 and at most 1, got a number of about 401 digits"),
    (10 ** 400, dict(), None),
    (2 ** 40, dict(high=1.0), "must be at most 1, got 1.09951e+12"),
]

# (value, range_problem's arguments after the value, the message or None), whole numbers only
INTEGER_CASES = [
    (1, dict(low=1), None),
    (0, dict(low=1), "must be at least 1, got 0"),
    (-7, dict(low=0), "must be at least 0, got -7"),
    (100, dict(low=1, high=100), None),
    (101, dict(low=1, high=100), "must be from 1 to 100, got 101"),
    (10**20, dict(low=1, high=100), "must be from 1 to 100, got 100000000000000000000"),
    (2**32, dict(low=0, high=2**32 - 1), "must be from 0 to 4294967295, got 4294967296"),
    (6, dict(high=5), "must be at most 5, got 6"),
    (numpy.int64(3), dict(low=1), None),
    (2.0, dict(low=1), "must be a whole number, got 2.0"),
    (2.5, dict(low=1), "must be a whole number, got 2.5"),
    (True, dict(low=0), "must be a whole number, got True"),
    ("5", dict(low=0), "must be a whole number, got '5'"),
    # stored values of any size stay short
    (10 ** 5000, dict(low=1, high=100), "must be from 1 to 100, got a number of about 5001 digits"),
    (-10 ** 40, dict(low=1), "must be at least 1, got a negative number of about 41 digits"),
    ("5" * 10_000, dict(low=0), "must be a whole number, got '55555555555555555...555555555555555555'"),
    ([1] * 10_000, dict(low=0), "must be a whole number, got [1, 1, 1, 1, 1, 1, ...]"),
    # open ends of whole numbers are said as for any number
    (0, dict(low=0, low_open=True), "must be above 0, got 0"),
    (1, dict(low=0, low_open=True), None),
]


@pytest.mark.parametrize("value, bounds, message", CASES,
                         ids=[f"{shown(value)}-{bounds}" for value, bounds, _ in CASES])
def test_range_problem_says_what_is_wrong_with_a_number(value, bounds, message):
    assert range_problem(value, **bounds) == message


@pytest.mark.parametrize("value, bounds, message", INTEGER_CASES,
                         ids=[f"{shown(value)}-{bounds}" for value, bounds, _ in INTEGER_CASES])
def test_range_problem_of_whole_numbers(value, bounds, message):
    assert range_problem(value, **bounds, integer=True) == message


def test_check_range_returns_the_value_or_raises_naming_it():
    assert check_range("--lr", 0.5, 0.0, low_open=True) == 0.5
    assert check_range("--beam", 4, 1, 100, integer=True) == 4
    with pytest.raises(ValueError, match=r"^--beam must be from 1 to 100, got 0$"):
        check_range("--beam", 0, 1, 100, integer=True)
    with pytest.raises(ValueError, match=r"^--lr must be a finite number, got nan$"):
        check_range("--lr", math.nan, 0.0, low_open=True)
    with pytest.raises(ValueError, match=r"^dropout must be at least 0 and below 1, got 1$"):
        check_range("dropout", 1.0, 0.0, 1.0, high_open=True)


@pytest.mark.parametrize("value, allow_one, message", [
    (0.0, False, None), (0.999, False, None), (1.0, True, None), (0, False, None),
    (1.0, False, "p must be at least 0 and below 1, got 1"),
    (-0.01, False, "p must be at least 0 and below 1, got -0.01"),
    (1.5, True, "p must be at least 0 and at most 1, got 1.5"), (math.nan, True, "p must be a finite number, got nan"),
    (True, False, "p must be a number, got True")])
def test_check_probability_is_the_range_from_0_to_below_1_or_to_1(value, allow_one, message):
    if message is None:
        assert check_probability("p", value, allow_one=allow_one) == value
    else:
        with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
            check_probability("p", value, allow_one=allow_one)


def test_shown_keeps_a_value_short_and_on_one_line():
    assert shown(3) == "3" and shown("a\nb") == "'a\\nb'" and shown(None) == "None" and shown(10 ** 29) == str(10 ** 29)
    assert shown(10 ** 30) == "a number of about 31 digits" and len(shown("x" * 10 ** 6)) < 50
    assert len(shown({"key": "v" * 1000})) < 100


# (the Allowed, a value, the problem or None)
ALLOWED_CASES = [
    (Allowed(int, 1, 1024), 48, None),
    (Allowed(int, 1, 1024), 2_000_000, "must be from 1 to 1024, got 2000000"),
    (Allowed(int, 1, 1024), None, "must be a whole number, got None"),
    (Allowed(int, 1, 1024, optional=True), None, None),
    (Allowed(float, 0.0, 1.0, high_open=True), 1.0, "must be at least 0 and below 1, got 1"),
    (Allowed(float, -10.0, 10.0), 2, None),
    (Allowed(bool), True, None),
    (Allowed(bool), 1, "must be True or False, got 1"),
    (Allowed(str), "cpu", None),
    (Allowed(str), 3, "must be a string, got 3"),
    (Allowed(str, choices=("ding", "tsv")), "tsv", None),
    (Allowed(str, choices=("ding", "tsv")), "csv", "must be one of ding, tsv, got 'csv'"),
    (Allowed(str, choices=frozenset({"a"})), ["a"], "must be a string, got ['a']"),
    (Allowed(list, choices=frozenset({"a"})), ["a"], "must be one of a, got ['a']"),  # unhashable
]


@pytest.mark.parametrize("allowed, value, problem", ALLOWED_CASES,
                         ids=[f"{allowed.kind.__name__}-{value!r}"[:40] for allowed, value, _ in ALLOWED_CASES])
def test_allowed_says_what_is_wrong_with_a_setting(allowed, value, problem):
    assert allowed.problem(value) == problem


def test_allowed_from_a_dataclass_fields_metadata():
    metadata = {"type": float, "low": 0.0, "high": 10.0, "low_open": True, "high_open": False, "choices": None,
                "optional": True, "help": "peak learning rate"}
    assert Allowed.from_metadata(metadata) == Allowed(float, 0.0, 10.0, low_open=True, optional=True)
    assert Allowed.from_metadata({"type": int}) == Allowed(int)


TABLE = {"max_len": Allowed(int, 1, 1024), "embed_dim": Allowed(int, 1, 8192), "pre_norm": Allowed(bool)}


@pytest.mark.parametrize("values, others, problems", [
    ({"max_len": 48, "embed_dim": 256, "pre_norm": False}, False, []),
    ({"max_len": 48}, False, []),  # a missing value takes its default
    ({"embed_dim": 0, "max_len": 10 ** 9}, True,
     ["max_len must be from 1 to 1024, got 1000000000", "embed_dim must be from 1 to 8192, got 0"]),
    ({"max_len": 48, "colour": "red"}, True, []),
    ({"max_len": 48, "colour": "red"}, False, ["has unknown setting 'colour'"]),
    ({**{f"s{number}": 0 for number in range(7)}, 3: 0}, False,
     ["has unknown settings 's0', 's1', 's2', 's3', 's4' and more"]),
    ([48, 256], True, ["is [48, 256], not a table of settings"]),
    (None, True, ["is None, not a table of settings"]),
])
def test_stored_problems_lists_every_value_outside_its_table(values, others, problems):
    assert stored_problems(values, TABLE, others=others) == problems


def test_check_stored_raises_one_line_with_what_and_the_advice():
    check_stored({"max_len": 48}, TABLE, "x.pth: its stored config", "train again")
    with pytest.raises(RuntimeError) as error:
        check_stored({"max_len": 0, "pre_norm": "no"}, TABLE, "x.pth: its stored config", "train again",
                     error=RuntimeError)
    assert str(error.value) == ("x.pth: its stored config max_len must be from 1 to 1024, got 0; pre_norm must be "
                                "True or False, got 'no'; train again")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
