"""SIGINT and SIGTERM end a node with exit code 0 at any moment of its life (Humble, Jazzy,
Kilted). Standard library only: a node module installs these handlers as its first statement,
before its imports (rclpy, numpy, OpenCV, a backend: seconds), so that no signal meets the
default disposition (exit -15 with no output) or a KeyboardInterrupt inside an import.

What a signal does depends on the phase the process is in (:func:`set_phase`):

``starting``  imports, before ``rclpy.init``: there is nothing to clean up yet (no ROS context,
              no DDS participant, no shared memory, no file being written), so the process ends
              at once with exit code 0.
``init``      inside ``rclpy.init``: the request is only noted; the caller checks it right after.
``building``  the node's constructor (parameters, model load, warm-up, publishers): the first
              signal raises :class:`StopRequested` in the main thread, which aborts the
              construction; the caller then tears down what exists and shuts the context down.
``running``   spinning: the request is noted and the spin loop (which waits at most
              :data:`SPIN_PERIOD_S`) stops; the worker thread is joined before the node and the
              context are destroyed, so nothing publishes on an invalid context.
``stopping``  tearing down: further signals are noted and otherwise ignored.

rclpy's own handlers are not installed (``SignalHandlerOptions.NO``): they shut the context down
asynchronously from the signal handler, under the feet of timers, subscriptions and the worker
thread, which is where ``RCLError: ... context is not valid`` tracebacks came from.

A signal that arrives before the interpreter has run this module's first line (the first tens of
milliseconds after ``exec``) meets the default disposition: no Python program can act earlier.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

PHASES = ("starting", "init", "building", "running", "stopping")
#: Longest wait of the spin loop between checks of a stop request [s].
SPIN_PERIOD_S = 0.1


class StopRequested(BaseException):
    """A stop signal arrived while the node was being built. A BaseException, so that code
    catching ``Exception`` (per-frame error handling, libraries) does not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


class _State:
    def __init__(self) -> None:
        self.installed = False
        self.name = "node"
        self.phase = "starting"
        self.signum: int | None = None
        self.raised = False
        self.lock = threading.Lock()


_state = _State()


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _say(text: str) -> None:
    """One line on stderr without Python's buffers (safe from a signal handler)."""
    try:
        os.write(2, f"[{_state.name}] {text}\n".encode())
    except OSError:
        pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    first = _state.signum is None
    if first:
        _state.signum = signum
    phase = _state.phase
    if phase == "starting":
        _say(f"stopped by {signal_name(signum)} during start-up")
        os._exit(0)
    if phase == "building" and not _state.raised:
        _state.raised = True
        raise StopRequested(signum)
    # init, running, stopping: noted; the main thread acts on it


def install(name: str) -> bool:
    """Handle SIGINT and SIGTERM from now on (phase ``starting``). Only in the main thread of
    the main interpreter; returns whether the handlers are installed."""
    _state.name = name
    if _state.installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    _state.installed = True
    return True


def install_if_program(module_name: str, name: str, executable: str) -> bool:
    """:func:`install` when the calling module is the program: run with ``python -m`` (its
    ``__name__`` is ``__main__``) or through its console script (``sys.argv[0]`` is
    ``executable``), never when a test or a launch file merely imports it."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if module_name == "__main__" or argv0 == executable:
        return install(name)
    return False


def installed() -> bool:
    return _state.installed


def set_phase(phase: str) -> None:
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")
    _state.phase = phase


def phase() -> str:
    return _state.phase


def requested() -> bool:
    """A stop signal has arrived."""
    return _state.signum is not None


def requested_signal() -> str | None:
    return None if _state.signum is None else signal_name(_state.signum)


def stopping() -> bool:
    """A stop was requested or the teardown has begun: timers and threads publish no more."""
    return _state.signum is not None or _state.phase == "stopping"


def announce() -> None:
    """The one line a signalled node prints (nothing when no signal came)."""
    if _state.signum is not None:
        _say(f"stopped by {signal_name(_state.signum)}")


def reset_for_tests(**values: Any) -> None:
    """Back to a fresh state (tests that drive the phases in one process)."""
    global _state
    installed = _state.installed
    _state = _State()
    _state.installed = installed
    for key, value in values.items():
        setattr(_state, key, value)
