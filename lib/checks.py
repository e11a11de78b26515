"""One way to check a value's range, used by the scripts' flags (argparse types), the configs, the models and the
values a checkpoint stores alike.

``range_problem`` says what is wrong with a number in words ('must be from 1 to 100, got 200'), or None;
``check_range`` raises it as a ValueError that names the value; ``check_probability`` is the common case [0, 1).
``Allowed`` is what one setting may be (type, range or choices); ``stored_problems`` checks a dict of stored settings
against a table of them before anything is built from those values.
"""
import math
import numbers
import reprlib
from dataclasses import dataclass

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40


def shown(value):
    """``value`` as an error message shows it: its repr, cut to a few dozen characters (a stored string or list can
    be any length), and a whole number of more than 30 digits by its number of digits."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(value) >= 10 ** 30:
        sign = "negative " if value < 0 else ""
        return f"a {sign}number of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    return _SHORT.repr(value)


def range_problem(value, low=None, high=None, low_open=False, high_open=False, integer=False):
    """What is wrong with ``value`` for the range low..high (open ends where ``*_open``; None: unbounded), or None.

    ``integer``: whole numbers only (bools are not numbers here). Floats must be finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        return f"must be a {'whole number' if integer else 'number'}, got {shown(value)}"
    whole = isinstance(value, numbers.Integral)
    if not whole and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not (too_low or too_high):
        return None
    got = shown(int(value)) if whole and (integer or abs(value) >= 10 ** 30) else f"{value:g}"
    if integer and not low_open and not high_open:
        bounds = f"at least {low}" if high is None else f"at most {high}" if low is None else f"from {low} to {high}"
        return f"must be {bounds}, got {got}"
    parts = []
    if low is not None:
        parts.append(f"{'above' if low_open else 'at least'} {low:g}")
    if high is not None:
        parts.append(f"{'below' if high_open else 'at most'} {high:g}")
    return f"must be {' and '.join(parts)}, got {got}"


def check_range(name, value, low=None, high=None, low_open=False, high_open=False, integer=False):
    """Return ``value``, or raise a ValueError '<name> must be ..., got ...' when it is outside the range."""
    problem = range_problem(value, low, high, low_open, high_open, integer)
    if problem:
        raise ValueError(f"{name} {problem}")
    return value


def check_probability(name, value, allow_one=False):
    """Return ``value``, or raise a ValueError unless it is a probability in [0, 1) (or [0, 1] with ``allow_one``)."""
    return check_range(name, value, 0.0, 1.0, high_open=not allow_one)


@dataclass(frozen=True)
class Allowed:
    """What one setting may be: a ``kind`` (int, float, bool or str) within low..high (open ends where ``*_open``;
    None: unbounded) for numbers, one of ``choices`` when given; None too where ``optional``."""
    kind: type
    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = None
    optional: bool = False

    @classmethod
    def from_metadata(cls, metadata):
        """From a dataclass field's metadata that holds these names ("type" for ``kind``), as TrainConfig's does."""
        return cls(metadata["type"], *(metadata.get(name) for name in ("low", "high")),
                   *(bool(metadata.get(name)) for name in ("low_open", "high_open")), metadata.get("choices"),
                   bool(metadata.get("optional")))

    def problem(self, value):
        """What is wrong with ``value`` in words ('must be from 1 to 1024, got 2000000'), or None."""
        if value is None and self.optional:
            return None
        if self.kind in (int, float):
            problem = range_problem(value, self.low, self.high, self.low_open, self.high_open, self.kind is int)
            if problem:
                return problem
        elif not isinstance(value, self.kind):
            kind = {bool: "True or False", str: "a string"}.get(self.kind, f"a {self.kind.__name__}")
            return f"must be {kind}, got {shown(value)}"
        try:
            chosen = self.choices is None or value in self.choices
        except TypeError:  # an unhashable value where the choices are a set
            chosen = False
        return None if chosen else f"must be one of {', '.join(map(str, self.choices))}, got {shown(value)}"


def stored_problems(values, allowed, others=True):
    """What is wrong with stored ``values`` (a dict: name -> value, e.g. a checkpoint's config), each in words
    ('max_len must be from 1 to 1024, got 2000000'), in the order of ``allowed`` (name -> Allowed); [] when nothing is.

    A name ``allowed`` lists but ``values`` lacks is not a problem (its default applies); a name it does not list is
    one unless ``others``. Meant to run before anything is built from the values, so that none can ask for more
    memory or time than the same setting given as a flag could."""
    if not isinstance(values, dict):
        return [f"is {shown(values)}, not a table of settings"]
    problems = [f"{name} {problem}" for name, rule in allowed.items()
                if name in values and (problem := rule.problem(values[name]))]
    unknown = [shown(name) for name in values if name not in allowed]
    if unknown and not others:
        problems.append(f"has unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:5])}"
                        f"{' and more' if len(unknown) > 5 else ''}")
    return problems


def check_stored(values, allowed, what, advice, others=True, error=ValueError):
    """Raise ``error`` '<what> <problem>; <problem>; <advice>' when ``stored_problems(values, allowed, others)``
    finds any, e.g. what='x.pth is a damaged translator checkpoint: its stored config'."""
    problems = stored_problems(values, allowed, others)
    if problems:
        raise error(f"{what} {'; '.join(problems)}; {advice}")
