"""Helpers for tests that talk real ROS 2 (FastDDS): an isolated rclpy context, bounded spinning,
the environment for ROS subprocesses.

Every test process uses its own ``ROS_DOMAIN_ID`` (``1 + pid % 100``, valid for FastDDS on
Linux) and ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, so parallel test runs on one machine do
not see each other's topics. Waits are bounded: spin until a condition holds or a deadline passes,
never ``sleep`` as synchronisation.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.node import Node

from support import REPO


def ros_domain_id() -> int:
    """This test process's ROS domain (1..100)."""
    return 1 + os.getpid() % 100


def ros_env(domain_id: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a ROS subprocess in ``domain_id`` (default: this process's test domain),
    discovery restricted to this machine."""
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(ros_domain_id() if domain_id is None else domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the discovery range
    # A node that crashes in native code (SIGSEGV, SIGABRT) dumps its Python stacks: a rare crash
    # in a stress test then says where it happened.
    env.setdefault("PYTHONFAULTHANDLER", "1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@contextlib.contextmanager
def ros_context(domain_id: int | None = None) -> Iterator[Context]:
    """A fresh, initialised rclpy Context in the test domain; shut down on exit.

    Create nodes with ``rclpy.create_node(name, context=ctx)``. rclpy's signal handlers are not
    installed (pytest keeps Ctrl-C)."""
    saved = {k: os.environ.get(k) for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")}
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    ctx = Context()
    kwargs = {}
    try:
        from rclpy.signals import SignalHandlerOptions
        kwargs["signal_handler_options"] = SignalHandlerOptions.NO
    except ImportError:
        pass
    rclpy.init(context=ctx, domain_id=ros_domain_id() if domain_id is None else domain_id,
               **kwargs)
    try:
        yield ctx
    finally:
        ctx.try_shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def spin_until(node_or_executor: Node | Executor, predicate: Callable[[], bool],
               timeout: float, step: float = 0.05) -> bool:
    """Spin until ``predicate()`` is true or ``timeout`` seconds passed; return ``predicate()``.

    A Node gets a temporary single-threaded executor in its own context."""
    executor: Executor
    temporary = isinstance(node_or_executor, Node)
    if temporary:
        executor = SingleThreadedExecutor(context=node_or_executor.context)
        executor.add_node(node_or_executor)
    else:
        executor = node_or_executor
    try:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            executor.spin_once(timeout_sec=min(step, remaining))
        return predicate()
    finally:
        if temporary:
            executor.remove_node(node_or_executor)
            executor.shutdown(timeout_sec=0)


def python_module_command(module: str, *args: str) -> list[str]:
    """``[python, -m, module, *args]`` with this test's interpreter."""
    return [sys.executable, "-m", module, *args]


def parameter_value(value: object) -> Any:
    """An ``rcl_interfaces/ParameterValue`` for a Python value (bool, int, float, list of int,
    or anything else as a string)."""
    from rcl_interfaces.msg import ParameterType, ParameterValue
    if isinstance(value, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    if isinstance(value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    if isinstance(value, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    if isinstance(value, list):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER_ARRAY,
                              integer_array_value=value)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))


def set_parameters(node: Node, executor: Executor, node_name: str, timeout: float = 20.0,
                   **values: object) -> list[Any]:
    """Call ``<node_name>/set_parameters`` (a fully qualified node name) and return the
    per-parameter results (``successful``, ``reason``)."""
    from rcl_interfaces.msg import Parameter
    from rcl_interfaces.srv import SetParameters
    client = node.create_client(SetParameters, f"{node_name}/set_parameters")
    try:
        assert spin_until(executor, client.service_is_ready, timeout), \
            f"{node_name}/set_parameters is not available"
        future = client.call_async(SetParameters.Request(
            parameters=[Parameter(name=k, value=parameter_value(v)) for k, v in values.items()]))
        assert spin_until(executor, future.done, timeout), f"{node_name}: no answer"
        return list(future.result().results)
    finally:
        node.destroy_client(client)
