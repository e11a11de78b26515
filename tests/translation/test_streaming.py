"""lib/translation/streaming.py: chunks of lines decoded several at once with results in input order, and lines that
arrive over time translated as they come."""
import threading
import time

import pytest

from lib.translation import streaming
from lib.translation.streaming import live_map, numbered_chunks, ordered_map


def test_numbered_chunks_number_every_line_and_drop_newlines_only():
    lines = ["a\n", "b\r\n", " c \n", "\n", "e"]
    assert list(numbered_chunks(lines, 2)) == [(1, ["a", "b"]), (3, [" c ", ""]), (5, ["e"])]


def test_ordered_map_keeps_order_reads_ahead_at_most_workers_items_and_finishes_before_an_error():
    def slow_first(item):  # the first result comes last
        time.sleep(0.2 if item == 0 else 0.0)
        return item * item
    assert list(ordered_map(slow_first, range(6), workers=3)) == [0, 1, 4, 9, 16, 25]

    def items():
        for item in range(5):
            assert item < 2 + len(taken)  # never more than 2 items ahead of the results taken
            yield item
        raise ValueError("line 6 is not UTF-8")
    taken = []
    with pytest.raises(ValueError, match="line 6"):
        for result in ordered_map(lambda item: item + 10, items(), workers=2):
            taken.append(result)
    assert taken == [10, 11, 12, 13, 14]


def test_ordered_map_runs_at_most_as_many_threads_as_the_machine_has_cpus(monkeypatch):
    monkeypatch.setattr(streaming.os, "cpu_count", lambda: 2)
    threads = set()

    def record(item):
        threads.add(threading.get_ident())
        return item
    assert list(ordered_map(record, range(50), workers=256)) == list(range(50))
    assert 1 <= len(threads) <= 2 and threading.get_ident() not in threads


def test_live_map_translates_a_line_before_the_next_one_has_arrived():
    """A program that writes a line and waits for its translation must get it: the chunk is what has arrived."""
    translated = threading.Event()

    def lines():
        yield "erste\n"
        assert translated.wait(10), "the first line was held back until a second one arrived"
        yield "zweite\n"

    def decode(numbered_chunk):
        translated.set()
        return numbered_chunk
    for workers in (1, 2):
        translated.clear()
        assert list(live_map(decode, lines(), size=64, workers=workers)) == [(1, ["erste"]), (2, ["zweite"])]


def test_live_map_keeps_order_and_fills_chunks_from_a_burst():
    def slow_first(numbered_chunk):  # while the first chunk decodes, the rest of the burst arrives
        first_line, chunk = numbered_chunk
        time.sleep(0.2 if first_line == 1 else 0.0)
        return first_line, [line.upper() for line in chunk]
    lines = [f"zeile {number}\n" for number in range(1, 12)]
    results = list(live_map(slow_first, lines, size=4, workers=2))
    assert [line for _, chunk in results for line in chunk] == [line.strip().upper() for line in lines]
    assert [first for first, _ in results] == [1 + sum(len(chunk) for _, chunk in results[:index])
                                               for index in range(len(results))]
    assert max(len(chunk) for _, chunk in results) == 4 and len(results) <= 4


def test_live_map_yields_what_was_read_before_a_reading_error():
    def lines():
        yield "gut\n"
        yield "auch gut\n"
        raise ValueError("--input f.txt is not UTF-8 text: line 3")
    taken = []
    with pytest.raises(ValueError, match="line 3"):
        for result in live_map(lambda numbered_chunk: numbered_chunk, lines(), size=64, workers=2):
            taken.append(result)
    assert [line for _, chunk in taken for line in chunk] == ["gut", "auch gut"]


def test_live_map_closes_what_it_opened_when_the_caller_goes():
    """A decoding error (or a caller that stops taking results) ends the reading thread, which closes the input."""
    import contextlib
    closed = threading.Event()

    @contextlib.contextmanager
    def open_lines():
        try:
            yield (f"Zeile {number}\n" for number in range(100_000))
        finally:
            closed.set()

    def fails(numbered_chunk):
        raise RuntimeError("the model ran out of memory")
    with pytest.raises(RuntimeError, match="out of memory"):
        list(live_map(fails, open_lines, size=4, workers=2))
    assert closed.wait(5)
    closed.clear()
    results = live_map(lambda numbered_chunk: numbered_chunk, open_lines, size=4)
    next(results)
    results.close()  # e.g. the reader of the output went away
    assert closed.wait(5)
