"""Why and how a training run stops: max_steps, max_minutes, a STOP file, Ctrl-C and the signals SIGTERM and SIGHUP
(ending after the step in progress, last.pth saved), a non-finite loss, and a write into the run folder that failed;
each with a one-line message that says how to go on."""
import math
import os
import shlex
import signal
import sys
import threading
import time
from contextlib import contextmanager

import torch
import torch.distributed as dist

from lib.cli import raise_stopped

STOP_FILE = "STOP"


def resume_command(out_dir):
    """The command line that continues the run in ``out_dir``, quoted for the shell (spaces, letters such as ü)."""
    return f"python run_translation.py --train --resume --out-dir {shlex.quote(out_dir)}"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or the signal ``signum``: SIGTERM, SIGHUP) ended training after ``path`` (last.pth) was saved at
    ``step``; str() is one line saying how to go on."""

    def __init__(self, step, path, out_dir, signum=signal.SIGINT):
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        super().__init__(f"Interrupted{by} at step {step}: {path} saved; continue with: {resume_command(out_dir)}")
        self.step, self.path, self.out_dir, self.signum = step, path, out_dir, signum

    def __str__(self):
        return self.args[0]

    def __reduce__(self):  # pickled (e.g. between processes) with its own arguments, not the message
        return type(self), (self.step, self.path, self.out_dir, self.signum)


def unsaved_error(state, error):
    """The OSError to raise when a write into the out-dir failed mid-run: the folder, the step last.pth holds and how
    to resume."""
    folder = state.config.out_dir
    if state.saved_step is None:
        kept = "no last.pth was saved yet, so start the run again"
    else:
        kept = f"{state.last_path} is kept at step {state.saved_step}; continue with: {resume_command(folder)}"
    return OSError(f"cannot write into --out-dir {folder} ({error.strerror or error}): make it writable (or free "
                   f"space), then {kept}")


class NonFiniteLoss(RuntimeError):
    """The training loss became inf or NaN: the run ends without saving the damaged weights."""


def check_finite(loss, state):
    """Raise NonFiniteLoss when ``loss`` (of the step just taken) is not finite; last.pth and best.pth on disk still
    hold the last good state."""
    if not math.isfinite(loss):
        raise NonFiniteLoss(f"the training loss became {loss} at step {state.step} (a learning rate too large for "
                            f"this model, --lr {state.config.lr:g}?): the run stopped without saving it; "
                            f"{state.config.out_dir} keeps the last good state. Start again with a smaller --lr, or "
                            "--resume from the last saved step")


# Why a run stops, weakest first: all processes stop for the strongest reason any of them has.


STOP_REASONS = (None, "max_steps", "max_minutes", "STOP file", "interrupted")


def stop_reason(state, deadline, interrupted=False):
    """None to go on, else why the run ends after this step: 'max_steps', 'max_minutes' (time.time() past
    ``deadline``), 'STOP file' (out_dir/STOP, looked for every 10 steps) or 'interrupted' (Ctrl-C). In a distributed
    run the processes agree (a collective call every step)."""
    config = state.config
    reason = None
    if interrupted:
        reason = "interrupted"
    elif state.step % 10 == 0 and os.path.exists(os.path.join(config.out_dir, STOP_FILE)):
        reason = "STOP file"
    elif time.time() > deadline:
        reason = "max_minutes"
    elif state.step >= config.max_steps:
        reason = "max_steps"
    if state.place.world_size > 1:
        code = torch.tensor([float(STOP_REASONS.index(reason))], device=state.device)
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        reason = STOP_REASONS[int(code.item())]
    return reason


def stop_message(state, reason):
    """One line on why the run stopped early ('STOP file' or 'max_minutes') and what was saved."""
    if reason == "STOP file":
        stop = os.path.join(state.config.out_dir, STOP_FILE)
        return f"Stopped at step {state.step}: found {stop}; {state.last_path} saved (delete {stop} before --resume)"
    return f"Stopped at step {state.step}: --max-minutes {state.config.max_minutes:g} reached; {state.last_path} saved"


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class GracefulInterrupt:
    """While active (in the main thread), a first Ctrl-C, SIGTERM or SIGHUP only sets ``requested`` (and ``signum``),
    so that training ends cleanly after the current step; a second one acts as it did before (Ctrl-C raises
    KeyboardInterrupt at once, SIGTERM ends the process). A signal someone else handles or ignores is left alone."""

    def __init__(self, announce=True):
        self.announce, self.requested, self.signum, self.previous = announce, False, signal.SIGINT, {}

    def _handle(self, signum, frame):
        self.requested, self.signum = True, signum
        signal.signal(signum, self.previous.pop(signum))
        if self.announce:
            what = ("Ctrl-C", "press Ctrl-C") if signum == signal.SIGINT else (signal.Signals(signum).name, "send it")
            try:
                print(f"\n{what[0]}: saving last.pth after this step ({what[1]} again to quit without saving)",
                      file=sys.stderr, flush=True)
            except OSError:  # SIGHUP: the terminal is gone; save all the same
                pass

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
                if signal.getsignal(signum) in (default, raise_stopped):  # run_main's own is a default too
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


@contextmanager
def saving(state):
    """Turn an OSError of writing into the out-dir into unsaved_error's message."""
    try:
        yield
    except OSError as error:
        raise unsaved_error(state, error) from None
