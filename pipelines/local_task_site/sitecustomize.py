"""Loaded by every Python process that `segpipe run` starts (its folder leads their
PYTHONPATH): a daemon thread ends the process when the runner that started it is gone, so a
runner killed with SIGKILL leaves no task training on unsupervised. The runner's own
SIGINT/SIGTERM handling stops its tasks itself; this covers the signal nobody can handle.

Kubeflow starts each task as ``sh -c '... python3 -m kfp.dsl.executor_main'``, so the task's
parent is a shell that outlives the runner: the process watches the runner's pid (from
SEGPIPE_RUNNER_PID), not its own parent.

A runner that is stopping (SIGINT/SIGTERM) creates SEGPIPE_STOP_FILE: a task that kfp
starts again after the stop (its retry policy) exits before doing any work, and a running
one within a second.

It also has segpipe's own warnings print as one ``warning: ...`` line
(pipelines/warning_lines.py), and skips the interpreter's last garbage collections at exit
(serving/quick_exit.py), as the ``segpipe`` commands do."""

import os
import threading
import time


def _runner_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"  # killed, not yet reaped by its own parent


def _stop_requested(stop_file: str) -> bool:
    return bool(stop_file) and os.path.exists(stop_file)


def _watch(pid: int, stop_file: str, interval_s: float) -> None:
    while not _runner_gone(pid) and not _stop_requested(stop_file):
        time.sleep(interval_s)
    os._exit(143)  # as if terminated: the runner that would read our result is gone


def _start() -> None:
    pid = os.environ.get("SEGPIPE_RUNNER_PID", "")
    stop_file = os.environ.get("SEGPIPE_STOP_FILE", "")
    if not pid.isdigit() or int(pid) == os.getpid():
        return
    if _stop_requested(stop_file):
        os._exit(143)
    if os.path.isdir("/proc"):
        threading.Thread(target=_watch, args=(int(pid), stop_file, 1.0), daemon=True,
                         name="segpipe-runner-watch").start()


_start()
try:
    from pipelines import warning_lines
    from serving import quick_exit
except ImportError:  # a task started where segpipe is not importable
    pass
else:
    warning_lines.install()
    quick_exit.install()  # a task ends seconds sooner once its work is done
