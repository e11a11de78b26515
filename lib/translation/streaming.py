"""Translating lines as they are read: in chunks, several chunks at once, results in input order.

A file is read as fast as the chunks are decoded (:func:`ordered_map` of :func:`numbered_chunks`). Lines that arrive
over time (a pipe from another program, a terminal) are read by a thread of their own (:func:`live_map`): a chunk is
whatever has arrived, up to its size, so a line is translated and written as soon as it comes, while a burst of lines
still fills whole chunks.
"""
import contextlib
import os
import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

POLL_SECONDS = 0.01  # how long to wait for another line before returning to the chunks being decoded


def numbered_chunks(lines, size):
    """(number of the first line, list of up to ``size`` lines without their newlines) for consecutive lines; when
    reading fails, the lines read before are yielded before the error is raised."""
    chunk, first_line, lines = [], 1, iter(lines)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            break
        except Exception:
            if chunk:
                yield first_line, chunk
            raise
        chunk.append(line.rstrip("\r\n"))
        if len(chunk) == size:
            yield first_line, chunk
            first_line, chunk = first_line + size, []
    if chunk:
        yield first_line, chunk


def usable_workers(workers):
    """``workers`` capped at the machine's CPUs: more would only add batches held in memory at once."""
    return max(1, min(workers, os.cpu_count() or 1))


def ordered_map(function, items, workers=1):
    """``function`` of each of ``items`` (any iterable, read as results are taken), in order; with ``workers`` > 1 on
    that many threads (at most the machine's CPUs), at most ``workers`` items ahead of the results taken. When
    reading ``items`` fails, the results of the items read before are yielded before the error is raised."""
    workers = usable_workers(workers)
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) == workers:
                    yield pending.popleft().result()
        except Exception:
            while pending:
                yield pending.popleft().result()
            raise
        while pending:
            yield pending.popleft().result()


class _End:
    """What the reading thread puts last: the error that ended reading, or None at the end of the lines."""

    def __init__(self, error=None):
        self.error = error


def _read_into(source, inbox, stop):
    """The reading thread: every line of ``source`` into ``inbox``, then an _End; gives up when ``stop`` is set (the
    caller has gone: an error, or it stopped taking results), so that the file is closed."""
    def put(item):
        while not stop.is_set():
            try:
                inbox.put(item, timeout=POLL_SECONDS * 10)
                return True
            except queue.Full:
                continue
        return False
    try:
        with source() if callable(source) else contextlib.nullcontext(source) as lines:
            for line in lines:
                if not put(line):
                    return
    except Exception as error:  # handed to the caller's thread, raised there after the lines before it
        put(_End(error))
        return
    put(_End())


def live_map(function, lines, size, workers=1):
    """``function((number of the first line, chunk))`` for chunks of ``lines`` that arrive over time, yielded in
    input order as each is decoded: a chunk holds the lines that have arrived (at most ``size``), so no result waits
    for a line that has not come yet. Up to ``workers`` chunks (at most the CPUs) are decoded at once; at most
    ``size * (workers + 1)`` lines are read ahead. When reading fails, the chunks read before are yielded first.

    ``lines``: an iterable, or a function that opens one (a context manager giving it). Given a function, the reading
    thread opens and closes the file itself, so that a stop never waits on a read that waits for a line."""
    workers = usable_workers(workers)
    inbox, stop = queue.Queue(maxsize=size * (workers + 1)), threading.Event()
    threading.Thread(target=_read_into, args=(lines, inbox, stop), daemon=True, name="read-lines").start()
    pending, next_number, end = deque(), 1, None
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(stop.set)  # however this ends, the reading thread gives up (it may be waiting for a line)
        pool = cleanup.enter_context(ThreadPoolExecutor(workers))
        while end is None or pending:
            if end is not None or len(pending) == workers:
                yield pending.popleft().result()
                continue
            try:
                item = inbox.get(timeout=POLL_SECONDS if pending else None)
            except queue.Empty:  # nothing new: give back the oldest chunk's result, then look again
                yield pending.popleft().result()
                continue
            chunk = []
            while not isinstance(item, _End):
                chunk.append(item.rstrip("\r\n"))
                if len(chunk) == size:
                    break
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
            if isinstance(item, _End):
                end = item
            if chunk:
                pending.append(pool.submit(function, (next_number, chunk)))
                next_number += len(chunk)
    if end.error is not None:
        raise end.error
