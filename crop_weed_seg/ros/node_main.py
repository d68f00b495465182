"""The ``main`` of every node: rclpy set-up, spin, clean exit (Humble, Jazzy and Kilted)."""

from __future__ import annotations

import sys
from typing import Any, Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException

from crop_weed_seg.errors import CropWeedSegError


def run_node(factory: Callable[[], Any], name: str, args: list[str] | None = None) -> int:
    """Build the node with ``factory`` and spin it. Exit code 0 on SIGINT/SIGTERM, 1 on a
    start-up error (one ``fatal:`` line, no traceback) or a failed shutdown. ``rclpy.init`` then
    ``try``/``finally``: ``with rclpy.init()`` does not exist before Kilted."""
    rclpy.init(args=args)
    node: Any = None
    code = 0
    try:
        node = factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (CropWeedSegError, ParameterException) as exc:
        print(f"[{name}] fatal: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        try:
            if node is not None:
                if hasattr(node, "shutdown"):
                    node.shutdown()
                node.destroy_node()
        except Exception as exc:  # noqa: BLE001 — a clean exit, and say what went wrong
            print(f"[{name}] error while shutting down: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
            code = code or 1
        rclpy.try_shutdown()
    return code
