"""What the root scripts share: checked argparse value types, early checks of paths, and one way to end on bad input.

Library code raises ordinary exceptions (ValueError, FileNotFoundError, ...); only the scripts turn them into one
line on stderr, through :func:`run_main`.
"""
import argparse
import math
import os
import re
import signal
import sys
import threading

from lib.checks import range_problem

# Exceptions that mean "bad input or environment", shown as one line instead of a traceback.
USER_ERRORS = (ValueError, OSError, ImportError, RuntimeError)


def int_range(low, high=None):
    """An argparse ``type`` for integers in [low, high] (``high`` None: no upper bound)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        problem = range_problem(value, low, high, integer=True)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    parse.__name__ = "integer"
    return parse


def float_range(low=None, high=None, low_open=False, high_open=False):
    """An argparse ``type`` for finite floats between ``low`` and ``high`` (open ends where ``*_open``)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        problem = range_problem(value, low, high, low_open, high_open)
        if problem:
            finite = math.isfinite(value)
            raise argparse.ArgumentTypeError(problem if finite else f"must be a finite number, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def device_name(text):
    """An argparse ``type``: cpu, cuda or cuda:N."""
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return text


class FlagTable:
    """Flags added through :meth:`add` to a parser made with ``argument_default=argparse.SUPPRESS``: the parsed
    arguments hold only the flags given, so :meth:`parse` can tell which they were before it fills in the defaults."""

    def __init__(self):
        self.option = {}  # dest -> its first option string, in the order added (that of --help)
        self.defaults = {}

    def add(self, group, *names, default=argparse.SUPPRESS, **options):
        """``group.add_argument(*names, **options)``; ``default`` is set after parsing when the flag is not given
        (argparse.SUPPRESS: left absent). Help texts name the default themselves (no %(default)s)."""
        action = group.add_argument(*names, **options)
        self.option[action.dest] = action.option_strings[0]
        self.defaults[action.dest] = default
        return action

    def parse(self, parser, argv=None):
        """(parsed arguments with the defaults filled in, {dest: option string} of the flags given in --help's
        order) for ``argv`` (None: sys.argv)."""
        args = parser.parse_args(argv)
        given = {dest: option for dest, option in self.option.items() if dest in vars(args)}
        for dest, default in self.defaults.items():
            if dest not in given and default is not argparse.SUPPRESS:
                setattr(args, dest, default)
        return args, given


def set_threads(threads):
    """Use ``threads`` torch CPU threads when given (None: torch's choice)."""
    if threads:
        import torch
        torch.set_num_threads(threads)


def discard_stdout():
    """Point stdout at /dev/null once its reader is gone (``... | head``), so that Python's final flush does not
    raise BrokenPipeError again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# The signals that ask a script to stop besides Ctrl-C (SIGINT): kill, timeout and schedulers; a closed terminal.
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP, raised where the script is as a KeyboardInterrupt: ``finally`` blocks and
    context managers run (a temporary output file is removed), then :func:`run_main` ends the script."""

    def __init__(self, signum):
        super().__init__()
        self.signum = signum


class StopsDeferred:
    """``with STOPS_DEFERRED:`` a block that a stop does not cut in two, such as writing an output and counting it:
    Ctrl-C, SIGTERM or SIGHUP arriving during it (with :func:`run_main`'s handlers) take effect at its end."""

    def __init__(self):
        self.depth, self.signum = 0, None

    def __enter__(self):
        self.depth += 1

    def __exit__(self, *exception):
        self.depth -= 1
        if not self.depth and self.signum is not None:
            signum, self.signum = self.signum, None
            raise Stopped(signum)


STOPS_DEFERRED = StopsDeferred()


def raise_stopped(signum, frame):
    """The handler :func:`run_main` installs for SIGINT and TERMINATION_SIGNALS (held while STOPS_DEFERRED)."""
    if STOPS_DEFERRED.depth:
        STOPS_DEFERRED.signum = STOPS_DEFERRED.signum or signum
        return
    raise Stopped(signum)


class Kept:
    """What the running script has kept so far: the end of the line :func:`run_main` prints when Ctrl-C, SIGTERM or
    SIGHUP stops it. A command sets ``KEPT.text`` as its outputs grow (e.g. "the 3 lines translated so far were
    written"); run_main sets it to DEFAULT before each script."""
    DEFAULT = "no file was left half written (outputs are written whole or not at all)"

    def __init__(self):
        self.text = self.DEFAULT


KEPT = Kept()
NOTHING_WRITTEN = "nothing was written"


def stop_message(error):
    """The line that ends a script stopped by ``error`` (a KeyboardInterrupt, or Stopped): how it was stopped, then
    what was kept (KEPT.text)."""
    signum = getattr(error, "signum", signal.SIGINT)
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    return f"{how}: {KEPT.text}"


def run_main(main, args):
    """Run ``main(args)``; bad input ends the script with ``error: <message>`` (exit 1); Ctrl-C, SIGTERM and SIGHUP
    with one line saying what was kept (KEPT; exit 128 + the signal's number: 130, 143, 129); a reader that stops early
    (``... | head``) quietly (exit 1, as a shell pipeline expects)."""
    installed = {}
    KEPT.text = Kept.DEFAULT
    if threading.current_thread() is threading.main_thread():
        for signum in TERMINATION_SIGNALS:
            if signal.getsignal(signum) is signal.SIG_DFL:
                installed[signum] = signal.signal(signum, raise_stopped)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Ctrl-C: still a KeyboardInterrupt
            installed[signal.SIGINT] = signal.signal(signal.SIGINT, raise_stopped)
    try:
        return main(args)
    except BrokenPipeError:
        discard_stdout()
        sys.exit(1)
    except KeyboardInterrupt as error:
        print(stop_message(error), file=sys.stderr)
        sys.exit(128 + getattr(error, "signum", signal.SIGINT))
    except USER_ERRORS as error:
        sys.exit(f"error: {error}")
    finally:
        for signum, handler in installed.items():
            signal.signal(signum, handler)
