"""Tests of lib/checks.py, the one way to check a value's range: each case's message is written out by hand."""
import math
import sys
from fractions import Fraction

import numpy
import pytest

from lib.checks import check_probability, check_range, range_problem

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
    # open ends of whole numbers are said as for any number
    (0, dict(low=0, low_open=True), "must be above 0, got 0"),
    (1, dict(low=0, low_open=True), None),
]


@pytest.mark.parametrize("value, bounds, message", CASES, ids=[f"{value!r}-{bounds}" for value, bounds, _ in CASES])
def test_range_problem_says_what_is_wrong_with_a_number(value, bounds, message):
    assert range_problem(value, **bounds) == message


@pytest.mark.parametrize("value, bounds, message", INTEGER_CASES,
                         ids=[f"{value!r}-{bounds}" for value, bounds, _ in INTEGER_CASES])
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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
