"""One way to check a value's range, used by the scripts' flags (argparse types), the configs and the models alike.

``range_problem`` says what is wrong with a number in words ('must be from 1 to 100, got 200'), or None;
``check_range`` raises it as a ValueError that names the value; ``check_probability`` is the common case [0, 1).
"""
import math
import numbers


def range_problem(value, low=None, high=None, low_open=False, high_open=False, integer=False):
    """What is wrong with ``value`` for the range low..high (open ends where ``*_open``; None: unbounded), or None.

    ``integer``: whole numbers only (bools are not numbers here). Floats must be finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        return f"must be a {'whole number' if integer else 'number'}, got {value!r}"
    if not integer and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not (too_low or too_high):
        return None
    if integer and not low_open and not high_open:
        bounds = f"at least {low}" if high is None else f"at most {high}" if low is None else f"from {low} to {high}"
        return f"must be {bounds}, got {value}"
    parts = []
    if low is not None:
        parts.append(f"{'above' if low_open else 'at least'} {low:g}")
    if high is not None:
        parts.append(f"{'below' if high_open else 'at most'} {high:g}")
    return f"must be {' and '.join(parts)}, got {value:g}"


def check_range(name, value, low=None, high=None, low_open=False, high_open=False, integer=False):
    """Return ``value``, or raise a ValueError '<name> must be ..., got ...' when it is outside the range."""
    problem = range_problem(value, low, high, low_open, high_open, integer)
    if problem:
        raise ValueError(f"{name} {problem}")
    return value


def check_probability(name, value, allow_one=False):
    """Return ``value``, or raise a ValueError unless it is a probability in [0, 1) (or [0, 1] with ``allow_one``)."""
    return check_range(name, value, 0.0, 1.0, high_open=not allow_one)
