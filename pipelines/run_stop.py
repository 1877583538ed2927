"""How a local run stops: SIGINT/SIGTERM reaching the runner stop every task process it
started (and theirs) before the runner exits, SIGTERM first and SIGKILL after a grace; a stop
file tells a task kfp retries to exit at once. (A task outliving a runner killed by SIGKILL
exits by itself: ``local_task_site``'s watchdog.)"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: The stop file's path, for the tasks (``local_task_site``): it exists once the run stops.
STOP_FILE_ENV = "SEGPIPE_STOP_FILE"


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached the runner (a BaseException, so kfp's own handlers do not
    swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextlib.contextmanager
def stopped_by_signals(on_signal: Callable[[], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (the web app runs us elsewhere)
        return

    def interrupt(signum, _frame):
        # Stop the tasks first: kfp waits for a ParallelFor's running tasks before an
        # exception gets out of it, so raising alone would wait for the whole tuning.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        on_signal()
        stop_tasks()
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_tasks(grace_s: float = 10.0) -> None:
    """SIGTERM to every process this runner started (and theirs), then SIGKILL to those
    still there after ``grace_s``. The stop file goes first: kfp retries a killed task
    (the tune workers have a retry policy for preempted nodes), and a task that starts
    after it exits at once instead of training on."""
    stop_file = os.environ.get(STOP_FILE_ENV)
    if stop_file:
        with contextlib.suppress(OSError):
            Path(stop_file).touch()
    signalled: set[int] = set()
    deadline = time.monotonic() + grace_s
    while True:
        alive = [pid for pid in descendants(os.getpid()) if _alive(pid)]
        if not alive or time.monotonic() >= deadline:
            break
        for pid in alive:
            if pid not in signalled:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                signalled.add(pid)
        time.sleep(0.2)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (children first found, grandchildren after)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the ppid follows the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
