"""SIGINT/SIGTERM in each phase of a node's life, made deterministic: the process signals itself
at the chosen moment (during imports, inside rclpy.init, while the node is being built, from a
timer callback with a worker thread publishing). Each must end with exit code 0 and exactly one
line of its own. The random-moment stress test over DDS is in test_chaos.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytest.importorskip("rclpy")

from support.ros import ros_env  # noqa: E402

PRELUDE = """
import os, signal, sys, threading, time
from crop_weed_seg.ros import clean_exit
clean_exit.install("probe_node")
"""

NODE = """
import rclpy
from std_msgs.msg import String
from crop_weed_seg.ros.node_main import ManagedNode, run_node
from crop_weed_seg.errors import ConfigError

def kill_self(sig):
    os.kill(os.getpid(), sig)

class Probe(ManagedNode):
    def __init__(self, **kwargs):
        super().__init__("probe_node", **kwargs)
        self.pub = self.create_publisher(String, "chatter", 10)
        self.ticks = 0
        self.running = True
        self.worker = threading.Thread(target=self.work, daemon=True)
        self.worker.start()
        {build}

    def work(self):
        while self.running:          # publishes until shutdown() stops it, like the segmenter
            self.pub.publish(String(data="x"))
            time.sleep(0.001)

    def tick(self):
        self.ticks += 1
        {tick}

    def shutdown(self):
        self.running = False
        self.worker.join(5.0)
        return not self.worker.is_alive()

sys.exit(run_node(Probe, "probe_node"))
"""


def _run(code: str, timeout: float = 120.0) -> tuple[int, list[str], float]:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, env=ros_env(), timeout=timeout)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return result.returncode, lines, time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_imports_exits_at_once(sig: int) -> None:
    code, lines, _ = _run(PRELUDE + f"""
os.kill(os.getpid(), {int(sig)})
import numpy, rclpy                 # the heavy imports that would follow
time.sleep(30)
print("not reached")
""")
    assert code == 0 and lines == [f"[probe_node] stopped by {sig.name} during start-up"], lines


def test_signal_inside_rclpy_init_skips_the_node() -> None:
    code, lines, _ = _run(PRELUDE + """
import rclpy
original = rclpy.init
def init(**kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return original(**kwargs)
rclpy.init = init
""" + NODE.format(build="raise AssertionError('built despite the signal')", tick="pass"))
    assert code == 0 and lines == ["[probe_node] stopped by SIGTERM"], lines


def test_signal_while_the_node_is_built_aborts_the_construction() -> None:
    """E.g. during the model load: the construction stops there (no 30 s wait), what exists is
    torn down (the worker thread too) and the context shut down."""
    code, lines, took = _run(PRELUDE + NODE.format(
        build="kill_self(signal.SIGTERM)\n        time.sleep(30)  # a long model load",
        tick="pass"))
    assert code == 0 and lines == ["[probe_node] stopped by SIGTERM"], lines
    assert took < 25.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_from_a_timer_callback_while_a_worker_publishes(sig: int) -> None:
    code, lines, _ = _run(PRELUDE + NODE.format(
        build="self.create_timer(0.01, self.tick)",
        tick=f"""if self.ticks == 5:
            kill_self({int(sig)})
            for _ in range(100):  # the callback goes on publishing after the signal
                self.publish_safely(self.pub, String(data="y"))"""))
    assert code == 0 and lines == [f"[probe_node] stopped by {sig.name}"], lines


def test_a_second_signal_during_the_teardown_changes_nothing() -> None:
    code, lines, _ = _run(PRELUDE + NODE.format(
        build="self.create_timer(0.01, self.tick)",
        tick="""if self.ticks == 3:
            kill_self(signal.SIGINT)
            kill_self(signal.SIGTERM)""").replace(
        "        self.running = False\n",
        "        os.kill(os.getpid(), signal.SIGINT)\n        self.running = False\n"))
    assert code == 0 and lines == ["[probe_node] stopped by SIGINT"], lines


def test_startup_errors_stay_fatal_with_one_line() -> None:
    code, lines, _ = _run(PRELUDE + NODE.format(build="raise ConfigError('bad value x')",
                                                tick="pass"))
    assert code == 1 and lines == ["[probe_node] fatal: bad value x"], lines


def test_importing_a_node_module_installs_nothing() -> None:
    """Tests and launch files import the node modules: their signals stay theirs."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    import crop_weed_seg.ros.segmenter_node  # noqa: F401
    import crop_weed_seg.ros.spray_planner_node  # noqa: F401
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    code, lines, _ = _run("""
import sys
sys.argv[0] = "/opt/ros/lib/crop_weed_seg/spray_planner"    # as its console script runs it
import crop_weed_seg.ros.spray_planner_node
from crop_weed_seg.ros import clean_exit
print(clean_exit.installed(), clean_exit.phase())
""")
    assert code == 0 and lines[-1] == "True starting", lines
