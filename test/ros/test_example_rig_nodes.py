"""``config/example_rig.yaml`` in real ROS 2: rclpy resolves its node-name patterns as
:mod:`support.param_files` does (for both nodes of both cameras), and the two real nodes, started
in the ``left`` namespace with ``--params-file config/example_rig.yaml`` (subprocesses, Fast
DDS), hold every value the file gives them (read back over their parameter services), keep the
defaults of the rest, and act on them (nozzle_states has the section's nozzles; the segmenter
says its mount comes from parameters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from support import REPO

pytest.importorskip("rclpy")

import rclpy  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import Executor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import parameter_value_to_python  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from crop_weed_seg.parameters import planner, segmenter  # noqa: E402

from support.nodes import RELIABLE, NodeProcess, Probe  # noqa: E402
from support.param_files import load, parameters_for  # noqa: E402
from support.ros import ros_context, ros_domain_id, spin_until  # noqa: E402

RIG = REPO / "config" / "example_rig.yaml"
#: parameters rclpy itself declares on every node
NODE_WIDE = {"use_sim_time", "start_type_description_service"}


def _plain(value: Any) -> Any:
    """Integer arrays come back as array('q'): compare them as lists."""
    return list(value) if hasattr(value, "typecode") else value


@pytest.mark.parametrize("fqn", ["/left/crop_weed_seg", "/left/spray_planner",
                                 "/right/crop_weed_seg", "/right/spray_planner"])
def test_rclpy_resolves_the_rig_as_the_reader_does(fqn: str) -> None:
    namespace, name = fqn.rsplit("/", 1)
    context = Context()
    rclpy.init(args=["rig_check", "--ros-args", "--params-file", str(RIG)], context=context,
               domain_id=ros_domain_id())
    try:
        node = Node(name, namespace=namespace, context=context, enable_rosout=False,
                    start_parameter_services=False,
                    automatically_declare_parameters_from_overrides=True)
        try:
            got = {n: _plain(p.value) for n, p in node.get_parameters_by_prefix("").items()
                   if n not in NODE_WIDE}
        finally:
            node.destroy_node()
    finally:
        context.try_shutdown()
    assert got == parameters_for(load(RIG), fqn)


def _get_parameters(node: Node, executor: Executor, fqn: str, names: list[str],
                    timeout: float = 90.0) -> dict[str, Any]:
    client: Any = node.create_client(GetParameters, f"{fqn}/get_parameters")
    try:
        assert spin_until(executor, client.service_is_ready, timeout), \
            f"{fqn}/get_parameters did not come up within {timeout} s"
        future = client.call_async(GetParameters.Request(names=names))
        assert spin_until(executor, future.done, 30.0), f"{fqn}: no answer"
        result: Any = future.result()
        values = result.values
        assert len(values) == len(names)
        return {n: _plain(parameter_value_to_python(v)) for n, v in zip(names, values)}
    finally:
        node.destroy_client(client)


@pytest.fixture(scope="module")
def context() -> Iterator[Context]:
    with ros_context() as ctx:
        yield ctx


def test_both_nodes_take_the_rig_in_the_left_namespace(context: Context,
                                                       tmp_path: Path) -> None:
    # backend pinned to onnxruntime (the file leaves it at auto): no TensorRT probing here
    seg = NodeProcess(tmp_path, "/left", "--params-file", str(RIG), "-p", "backend:=onnxruntime")
    plan = NodeProcess(tmp_path, "/left", "--params-file", str(RIG),
                       module="crop_weed_seg.ros.spray_planner_node")
    probe = Probe(context, "/left")
    joints: list[int] = []
    probe.node.create_subscription(JointState, "/left/nozzle_states",
                                   lambda m: joints.append(len(m.name)), RELIABLE)
    blocks = load(RIG)
    try:
        for table, fqn, command_line in (
                (segmenter.BY_NAME, "/left/crop_weed_seg", {"backend": "onnxruntime"}),
                (planner.BY_NAME, "/left/spray_planner", {})):
            from_file = parameters_for(blocks, fqn)
            expected = {n: _plain(spec.default) for n, spec in table.items()}
            expected.update(from_file)
            expected.update(command_line)
            got = _get_parameters(probe.node, probe.executor, fqn, sorted(table))
            assert got == expected, {n: (got[n], expected[n]) for n in got
                                     if got[n] != expected[n]}
            assert len(from_file) >= 10 and any(v != table[n].default
                                                for n, v in from_file.items())
        assert probe.spin_until(lambda: len(joints) > 0, 30.0), "no nozzle_states"
        assert set(joints) == {14}          # the left section's nozzles (the default is 12)
        _, _, values = probe.latest_values(lambda v: "mount_source" in v, timeout=30.0)
        assert values["mount_source"] == "parameters"
    finally:
        probe.close()
        outputs = [seg.stop_cleanly(), plan.stop_cleanly()]
    assert all("fatal" not in out for out in outputs), outputs
