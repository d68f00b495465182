"""The ``main`` of every node: rclpy set-up, spin, clean exit (Humble, Jazzy and Kilted).

Signals are handled by :mod:`crop_weed_seg.ros.clean_exit` (installed by the node module before
its imports), never by rclpy: the context is shut down here, after the node's threads have
stopped and the node is destroyed, so no timer, callback or worker ever meets an invalid
context. See docs/RELIABILITY.md.
"""

from __future__ import annotations

import gc
import os
import sys
import weakref
from typing import Any, Callable

import rclpy
from rclpy.context import Context
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from crop_weed_seg.errors import CropWeedSegError
from crop_weed_seg.ros import clean_exit

_building: list[weakref.ReferenceType[Any]] = []


class ManagedNode(Node):
    """A Node whose main loop is :func:`run_node`: registers itself as soon as the rclpy part
    exists (so that a construction aborted by a signal is still torn down), and publishes
    through :meth:`publish_safely`."""

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.run_ended = False
        _building[:] = [weakref.ref(self)]

    def end_run(self) -> None:
        """The node's job is done (field_sim after its drive, the scorer after its report):
        :func:`run_node` stops spinning after this callback, tears the node down and exits 0."""
        self.run_ended = True

    @property
    def stopping(self) -> bool:
        """A stop signal came, or the context is no longer valid: publish nothing more."""
        return clean_exit.stopping() or not self.context.ok()

    def publish_safely(self, publisher: Any, msg: Any) -> bool:
        """Publish unless the node is stopping; an error from a context that became invalid
        meanwhile (someone shut it down) is no error. Returns whether it was published."""
        if self.stopping:
            return False
        try:
            publisher.publish(msg)
        except Exception:  # noqa: BLE001 — RCLError / InvalidHandle, types differ per distro
            if self.stopping:
                return False
            raise
        return True

    def shutdown(self) -> bool:
        """Stop the node's own threads before it is destroyed; False when one did not stop."""
        return True


def _no_signal_handlers() -> dict[str, Any]:
    """rclpy.init keyword that keeps rclpy's signal handlers out (Humble and later)."""
    try:
        from rclpy.signals import SignalHandlerOptions
    except ImportError:  # older than Humble
        return {}
    return {"signal_handler_options": SignalHandlerOptions.NO}


def _registered_node() -> Any:
    node = _building[0]() if _building else None
    _building.clear()
    return node


def run_node(factory: Callable[..., Any], name: str, args: list[str] | None = None) -> int:
    """Build the node with ``factory(context=...)`` and spin it until SIGINT/SIGTERM.

    Exit code 0 on a signal at any moment (at most one line: ``stopped by SIGTERM``), 1 on a
    start-up error (one ``fatal:`` line, no traceback) or a failed shutdown. ``rclpy.init`` then
    ``try``/``finally``: ``with rclpy.init()`` does not exist before Kilted."""
    clean_exit.install(name)            # no-op when the module did it before its imports
    if clean_exit.requested():
        clean_exit.announce()
        return 0
    clean_exit.set_phase("init")
    context = Context()
    rclpy.init(args=args, context=context, **_no_signal_handlers())
    node: Any = None
    executor: Any = None
    code = 0
    try:
        if not clean_exit.requested():
            clean_exit.set_phase("building")
            node = factory(context=context)
            clean_exit.set_phase("running")
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            while not clean_exit.requested() and context.ok() and \
                    not getattr(node, "run_ended", False):
                executor.spin_once(timeout_sec=clean_exit.SPIN_PERIOD_S)
    except (clean_exit.StopRequested, KeyboardInterrupt, ExternalShutdownException):
        pass
    except (CropWeedSegError, ParameterException) as exc:
        if not clean_exit.requested():
            print(f"[{name}] fatal: {exc}", file=sys.stderr, flush=True)
            code = 1
    except Exception:
        # an error caused by the teardown race (a context shut down by someone else) after a
        # stop was requested is a clean exit; anything else is a bug and shows its traceback
        if not (clean_exit.requested() or not context.ok()):
            raise
    finally:
        clean_exit.set_phase("stopping")
        if node is None:
            node = _registered_node()   # a construction aborted by a signal
        else:
            _building.clear()
        code = _teardown(name, node, executor, context, code)
    clean_exit.announce()
    return code


def _teardown(name: str, node: Any, executor: Any, context: Context, code: int) -> int:
    threads_stopped = True
    try:
        if node is not None and hasattr(node, "shutdown"):
            threads_stopped = node.shutdown() is not False
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
    except Exception as exc:  # noqa: BLE001 — a clean exit, and say what went wrong
        print(f"[{name}] error while shutting down: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        code = code or 1
    node = None
    gc.collect()                        # handles of a half-built node, before the context
    try:
        context.try_shutdown()
    except Exception as exc:  # noqa: BLE001
        print(f"[{name}] error while shutting down ROS: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        code = code or 1
    if not threads_stopped:
        # a worker still inside native code would crash the interpreter's finalisation
        clean_exit.announce()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
