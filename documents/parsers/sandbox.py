"""Run a parser in a child process with memory, CPU and wall-clock limits.

The task worker calls `extract()`. The child is forked from a forkserver
(a clean process that has already imported the parsers), lowers its own
address-space and CPU limits, parses, and streams units and progress back
through a pipe. The parent enforces the wall-clock limit, calls `on_tick`
about once a second (the worker's heartbeat; it may raise to abandon the
work) and kills the child when anything goes wrong, so one hostile file
cannot take the worker down.
"""

import multiprocessing
import signal
import time
from dataclasses import dataclass, field

from documents.parsers.base import Budget, ParseError, Title, Unit, clean, clean_line

PRELOAD = [
    "documents.parsers.pdf",
    "documents.parsers.docx",
    "documents.parsers.text",
    "documents.parsers.markdown",
    "documents.parsers.html",
    "documents.parsers.csv",
    "pypdfium2",
    "docx",
    "charset_normalizer",
]
_context = None
CRASH_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGTRAP, signal.SIGFPE}


def _get_context():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


@dataclass
class Extraction:
    units: list = field(default_factory=list)
    pages_total: int = 0
    title: str = ""
    cpu_seconds: float = 0.0  # the child's processor time (user + system), for logs and benchmarks


def _child(conn, path, kind, limits, memory_bytes, cpu_seconds):
    import resource

    from documents.parsers import parser_for

    try:
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        if cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        budget = Budget(limits)
        last = [0.0]

        def report(done, total):
            now = time.monotonic()
            if now - last[0] >= 0.2 or done == total:
                last[0] = now
                conn.send(("progress", done, total))

        for unit in parser_for(kind)(path, limits, budget, report):
            if isinstance(unit, Title):
                conn.send(("title", unit.text))
            else:
                conn.send(("unit", unit.text, unit.page, unit.section))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(("done", usage.ru_utime + usage.ru_stime))
    except ParseError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("error", "memory"))
    except RecursionError:
        conn.send(("error", "This file is nested too deeply to be read."))
    except Exception as exc:  # any other failure of a third-party parser is the file's fault
        conn.send(("error", f"This file could not be read ({type(exc).__name__})."))
    finally:
        conn.close()


def extract(path, kind, *, limits, memory_mb, timeout, on_tick=None, tick_seconds=1.0):
    """Parse the file at `path` in a child process; an `Extraction` or ParseError."""
    context = _get_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(sender, str(path), kind, limits, memory_mb * 1024 * 1024, max(1, int(timeout) + 1)),
        daemon=True,
    )
    child.start()
    sender.close()
    result = Extraction()
    done = 0
    finished = False
    error = None
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic() + tick_seconds
    try:
        while not finished and error is None:
            now = time.monotonic()
            if now >= deadline:
                raise ParseError(f"Reading this file took longer than {timeout:g} seconds, the limit.")
            if now >= next_tick and on_tick is not None:
                on_tick(done, result.pages_total)
                next_tick = now + tick_seconds
            if not receiver.poll(min(deadline, next_tick) - now):
                continue
            try:
                message = receiver.recv()
            except EOFError:
                break
            if message[0] == "unit":
                result.units.append(_unit(message[1], message[2], message[3]))
            elif message[0] == "title":
                result.title = clean_line(str(message[1]))[:255]
            elif message[0] == "progress":
                done, result.pages_total = message[1], message[2]
            elif message[0] == "done":
                finished = True
                result.cpu_seconds = message[1]
            elif message[0] == "error":
                error = message[1]
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if error == "memory":
        raise ParseError(f"Reading this file needed more than {memory_mb} MB of memory, the limit.")
    if error:
        raise ParseError(error)
    if not finished:
        code = child.exitcode
        if code is not None and code < 0 and -code == signal.SIGXCPU:
            raise ParseError(f"Reading this file took longer than {timeout:g} seconds, the limit.")
        if code is not None and -code in CRASH_SIGNALS:
            # A reader in C/C++ (PDFium) that runs out of its memory limit aborts rather than raising.
            raise ParseError(
                f"The reader crashed on this file ({_describe(code)}): it is damaged, or needs more than "
                f"{memory_mb} MB of memory, the limit."
            )
        raise ParseError(f"The reader stopped unexpectedly ({_describe(code)}).")
    if on_tick is not None:
        on_tick(result.pages_total or done, result.pages_total)
    return result


def _unit(text, page, section):
    """A unit as stored: no NUL (nor search marker) in its text or section, whatever the parser gave."""
    return Unit(clean(text), page=page, section=clean_line(section))


def _describe(code):
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def parse_here(path, kind, limits):
    """Parse in this process, without limits on memory or time (for tools and debugging)."""
    from documents.parsers import parser_for

    budget = Budget(limits)
    result = Extraction()
    for unit in parser_for(kind)(path, limits, budget, lambda done, total: None):
        if isinstance(unit, Title):
            result.title = clean_line(unit.text)[:255]
        else:
            result.units.append(_unit(unit.text, unit.page, unit.section))
    return result


__all__ = ["Extraction", "extract", "parse_here"]
