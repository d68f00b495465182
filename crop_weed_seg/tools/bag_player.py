"""Play a rosbag2 (sqlite3 or mcap) over real ROS 2 topics: our ``ros2 bag play``.

``ros2 bag`` (rosbag2_py) is not pip-installable, so ``make run`` and the integration tests use
this player, built on the pure-Python ``rosbags`` reader and rclpy:

- the stored serialized CDR bytes are published as they are (``Publisher.publish(bytes)``),
  never deserialised; only the message *class* must be importable (``sensor_msgs.msg`` for
  ``sensor_msgs/msg/Image``) so that rclpy can create a typed publisher;
- messages go out at the recorded pace of the bag's receive timestamps divided by ``rate``
  (``rate`` 0 or ``inf``: as fast as possible); when the player falls behind it publishes
  immediately and never skips;
- ``clock_hz`` publishes ``rosgraph_msgs/Clock`` on ``/clock`` (reliable, keep-last 1: matches
  both reliable and best-effort subscribers such as rclpy's time source) with the bag time at
  each message and at ``clock_hz`` while waiting for the next one;
- ``loop``: each pass after the first continues the timeline one *loop period* later
  (period = bag duration + the mean message interval), so ``/clock`` never goes backwards:
  pass ``p`` plays bag time ``t`` at clock ``t + p * loop_period_ns``. The published messages
  are unchanged, so their header stamps repeat the recorded ones on every pass;
- ``wait_for_subscribers``: before the first message, wait (bounded) until every data publisher
  has a matched subscription so the first frames are not lost to discovery;
- topics recorded from a transient-local ("latched") publisher (``offered_qos_profiles`` in the
  bag's metadata: ``/tf_static``, a latched ``camera_info`` or map) are published reliable and
  transient-local, so a node that starts after the message went out still receives it, as
  ``ros2 bag play`` does; every other topic gets the ``qos`` choice.

The clock mapping (:attr:`BagPlayer.start_monotonic`, :attr:`BagPlayer.start_wall_time`,
:attr:`BagPlayer.bag_start_ns`, :attr:`BagPlayer.rate`, :meth:`BagPlayer.clock_ns`,
:meth:`BagPlayer.scheduled_monotonic`) and the ``on_publish`` callback let a caller measure the
latency of outputs against the bag stamps.

Command line (``bag_player`` console script or ``python -m crop_weed_seg.tools.bag_player``)::

    bag_player BAG [--rate R] [--loop | --repeat N] [--clock [HZ]] [--topics T ...]
               [--remap FROM:=TO ...] [--wait-for-subscribers S] [--wait-topics T ...]
               [--warn-only]
               [--qos reliable|best_effort] [--ros-args ...]

Exit codes: 0 when done (also after Ctrl-C/SIGTERM), 2 for a bad bag or option.
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
import rclpy.utilities
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from crop_weed_seg.bags.rosbag_io import open_reader
from crop_weed_seg.errors import BagError, ConfigError, CropWeedSegError

#: Default /clock publishing frequency while waiting between messages [Hz].
DEFAULT_CLOCK_HZ = 100.0
#: Loop gap used when a bag has fewer than two distinct timestamps [ns].
_DEFAULT_GAP_NS = 100_000_000
QOS_CHOICES = ("reliable", "best_effort")

#: ``on_publish(topic, bag_time_ns, pass_index, monotonic_time)`` after each data message.
PublishCallback = Callable[[str, int, int, float], None]


def message_class(msgtype: str, topic: str = "") -> type:
    """The rclpy message class of ``pkg/msg/Type`` (also accepts ``pkg/Type``)."""
    parts = msgtype.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        pkg, name = parts[0], parts[2]
    elif len(parts) == 2:
        pkg, name = parts
    else:
        raise BagError(f"message type {msgtype!r}{_on(topic)} is not of the form pkg/msg/Type")
    try:
        module = importlib.import_module(f"{pkg}.msg")
    except ImportError as exc:
        raise BagError(
            f"cannot publish {msgtype}{_on(topic)}: the Python package {pkg!r} is not installed "
            f"({exc}); source the ROS workspace that has it, pip install "
            f"ros-{pkg.replace('_', '-')}, or leave the topic out with --topics") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise BagError(f"cannot publish {msgtype}{_on(topic)}: {pkg}.msg has no type {name!r} "
                       "(the installed package is older or newer than the bag's)")
    return cls


def _on(topic: str) -> str:
    return f" on topic {topic}" if topic else ""


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """``["FROM:=TO", ...]`` → ``{FROM: TO}``."""
    out = {}
    for item in items:
        src, sep, dst = item.partition(":=")
        if not sep or not src or not dst:
            raise ConfigError(f"remap {item!r} is not of the form FROM:=TO")
        out[src] = dst
    return out


def data_qos(kind: str, depth: int = 10) -> QoSProfile:
    """QoS of the data publishers: ``reliable`` (matches best-effort subscribers too) or
    ``best_effort``; keep-last ``depth``, volatile."""
    if kind not in QOS_CHOICES:
        raise ConfigError(f"qos {kind!r} is not one of {', '.join(QOS_CHOICES)}")
    reliability = (ReliabilityPolicy.RELIABLE if kind == "reliable"
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def latched_qos(depth: int = 10) -> QoSProfile:
    """QoS of topics recorded from transient-local publishers: the ``reliable`` data QoS, but
    transient local."""
    profile = data_qos("reliable", depth)
    profile.durability = DurabilityPolicy.TRANSIENT_LOCAL
    return profile


def recorded_latched(connections: Sequence[Any]) -> bool:
    """Whether any recorded publisher of a topic offered transient-local durability. rosbags
    gives ``offered_qos_profiles`` as Qos tuples; older metadata may hold it as YAML text."""
    for conn in connections:
        profiles = getattr(conn.ext, "offered_qos_profiles", None) or []
        if isinstance(profiles, str):
            if re.search(r"durability:\s*(1|transient_local)\b", profiles, re.IGNORECASE):
                return True
            continue
        for qos in profiles:
            durability = getattr(qos, "durability", None)
            if durability is not None and getattr(durability, "name", "") == "TRANSIENT_LOCAL":
                return True
    return False


def clock_qos() -> QoSProfile:
    """QoS of ``/clock``: keep-last 1 like rclcpp's ClockQoS, but reliable so that reliable
    subscribers match too (a reliable writer also serves best-effort readers)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


@dataclass(frozen=True)
class _Topic:
    name: str  # in the bag
    out: str  # published as (after remaps)
    msgtype: str
    count: int
    latched: bool = False


def open_bag(path: str | Path) -> Any:
    """An open ``rosbags.rosbag2.Reader``, or one BagError saying why the path is not a rosbag2
    (or why it cannot be read here)."""
    return open_reader(path)


class BagPlayer:
    """Publishes a rosbag2's messages on their topics at the recorded pace.

    ``node``: publish from this node (not destroyed by :meth:`close`); otherwise the player
    creates its own node ``bag_player`` in ``context`` (rclpy must be initialised).
    ``loop``: ``False``/``1`` one pass, an int ``n`` n passes, ``True`` or ``0`` forever
    (until :meth:`stop`). ``clock_hz``: publish ``/clock`` (None: don't). ``topics``: bag topic
    names to play (None: all). ``remaps``: bag topic → published topic.
    ``wait_for_subscribers``: seconds to wait for a matched subscription on every data topic
    (or only on ``wait_topics``, published names) before the first message (0: don't wait); on
    time-out raise :class:`BagError`, or only warn when ``wait_strict`` is False.
    ``ack_timeout``: at the end, wait up to this long until reliable subscribers acknowledged
    every message (so a process that exits right after :meth:`play` does not lose the last ones;
    not after :meth:`stop`).

    :meth:`play` blocks until the bag is played or :meth:`stop` is called (from any thread).
    The player does not need to be spun.
    """

    def __init__(self, bag: str | Path, *, node: Node | None = None, context: Any = None,
                 rate: float = 1.0, loop: bool | int = False,
                 clock_hz: float | None = None, topics: Sequence[str] | None = None,
                 remaps: Mapping[str, str] | None = None, wait_for_subscribers: float = 0.0,
                 wait_strict: bool = True, wait_topics: Sequence[str] | None = None,
                 qos: str = "reliable", depth: int = 10, ack_timeout: float = 5.0,
                 on_publish: PublishCallback | None = None) -> None:
        if not (rate >= 0):  # also rejects NaN
            raise ConfigError(f"rate {rate} must be >= 0 (0 or inf: as fast as possible)")
        if clock_hz is not None and not (clock_hz > 0 and math.isfinite(clock_hz)):
            raise ConfigError(f"clock frequency {clock_hz} must be a positive number")
        if wait_for_subscribers < 0:
            raise ConfigError(f"wait_for_subscribers {wait_for_subscribers} must be >= 0")
        if isinstance(loop, bool):
            self.passes = 0 if loop else 1
        elif loop >= 0:
            self.passes = int(loop)
        else:
            raise ConfigError(f"loop {loop} must be >= 0 (0: forever)")
        self.path = Path(bag)
        self.rate = float(rate)
        self.as_fast_as_possible = rate == 0 or math.isinf(rate)
        self.clock_hz = clock_hz
        self.wait_for_subscribers = float(wait_for_subscribers)
        self.wait_strict = wait_strict
        self.on_publish = on_publish
        self.ack_timeout = float(ack_timeout)
        remaps = dict(remaps or {})

        self._reader = open_bag(self.path)
        try:
            self._select(topics, remaps)
            outs = [t.out for t in self._topics]
            if wait_topics is not None:
                unknown = [w for w in wait_topics if w not in outs]
                if unknown:
                    raise BagError(f"wait topic(s) {', '.join(unknown)} are not played; "
                                   f"played: {', '.join(outs) or 'nothing'}")
            #: published topics whose subscribers play() waits for
            self.wait_topics = list(outs if wait_topics is None else dict.fromkeys(wait_topics))
            self._classes = {t.name: message_class(t.msgtype, t.name) for t in self._topics}
            self._timeline()
        except BaseException:
            self._reader.close()
            raise

        self._own_node = node is None
        if node is None:
            node = rclpy.create_node("bag_player", context=context)
        self.node = node
        self._pubs: dict[str, Any] = {}
        profile, latched = data_qos(qos, depth), latched_qos(depth)
        for t in self._topics:
            self._pubs[t.name] = node.create_publisher(self._classes[t.name], t.out,
                                                       latched if t.latched else profile)
        self._clock_pub = None
        if clock_hz is not None:
            from rosgraph_msgs.msg import Clock
            self._clock_cls = Clock
            self._clock_pub = node.create_publisher(Clock, "/clock", clock_qos())

        self._stop = threading.Event()
        #: messages published per *published* topic name (after remaps)
        self.counts: dict[str, int] = {t.out: 0 for t in self._topics}
        self.clock_count = 0
        self.passes_done = 0
        self.start_monotonic: float | None = None
        self.start_wall_time: float | None = None
        self.end_monotonic: float | None = None
        self.last_clock_ns: int | None = None
        self.stopped = False
        #: topics whose last messages were not acknowledged within ``ack_timeout`` after play()
        self.unacked: list[str] = []

    # ----------------------------------------------------------------- setup
    def _select(self, topics: Sequence[str] | None, remaps: dict[str, str]) -> None:
        infos = self._reader.topics
        if topics is not None:
            missing = [t for t in topics if t not in infos]
            if missing:
                raise BagError(f"topic(s) {', '.join(missing)} not in {self.path}; "
                               f"it has: {', '.join(sorted(infos)) or 'no topics'}")
            names = list(dict.fromkeys(topics))
        else:
            names = sorted(infos)
        unknown = [src for src in remaps if src not in infos]
        if unknown:
            raise BagError(f"remap source topic(s) {', '.join(unknown)} not in {self.path}; "
                           f"it has: {', '.join(sorted(infos)) or 'no topics'}")
        self._topics: list[_Topic] = []
        for name in names:
            info = infos[name]
            if info.msgtype is None:
                raise BagError(f"topic {name} in {self.path} has several message types")
            for conn in info.connections:
                fmt = conn.ext.serialization_format if hasattr(conn.ext, "serialization_format") \
                    else "cdr"
                if fmt != "cdr":
                    raise BagError(f"topic {name} in {self.path} is serialised as {fmt!r}; "
                                   "only cdr can be published")
            self._topics.append(_Topic(name, remaps.get(name, name), info.msgtype, info.msgcount,
                                       recorded_latched(info.connections)))
        outs = [t.out for t in self._topics]
        dup = {o for o in outs if outs.count(o) > 1}
        if dup:
            raise BagError(f"remaps publish several bag topics on {', '.join(sorted(dup))}")
        self._connections = [c for t in self._topics for c in infos[t.name].connections]

    def _timeline(self) -> None:
        """Bag start and end (from the metadata, like ros2 bag play) and the loop period."""
        if self._reader.message_count == 0 or not self._topics:
            self.bag_start_ns = self.bag_end_ns = 0
            span, frames = 0, 0
        else:
            self.bag_start_ns = int(self._reader.start_time)
            # rosbags reports duration = last - first + 1 (an exclusive end); ros2 bag: last - first
            span = max(0, int(self._reader.duration) - 1)
            self.bag_end_ns = self.bag_start_ns + span
            frames = max(t.count for t in self._topics)
        #: selected messages per pass
        self.message_count = sum(t.count for t in self._topics)
        # mean interval of the busiest selected topic: a 10 Hz camera bag loops seamlessly
        gap = span // (frames - 1) if frames > 1 and span > 0 else _DEFAULT_GAP_NS
        #: clock advance from one loop pass to the next [ns]
        self.loop_period_ns = span + gap

    # ----------------------------------------------------------------- mapping
    @property
    def topics(self) -> dict[str, str]:
        """Played bag topics → published topic names."""
        return {t.name: t.out for t in self._topics}

    def clock_ns(self, bag_ns: int, pass_index: int = 0) -> int:
        """The ``/clock`` value at which bag time ``bag_ns`` of pass ``pass_index`` plays."""
        return int(bag_ns) + pass_index * self.loop_period_ns

    def scheduled_monotonic(self, bag_ns: int, pass_index: int = 0) -> float:
        """``time.monotonic()`` at which that message is due (after :meth:`play` started; for
        as-fast-as-possible playback the due time is the start)."""
        if self.start_monotonic is None:
            raise RuntimeError("the player has not started yet")
        if self.as_fast_as_possible:
            return self.start_monotonic
        return self.start_monotonic + (self.clock_ns(bag_ns, pass_index)
                                       - self.bag_start_ns) / 1e9 / self.rate

    def scheduled_wall_time(self, bag_ns: int, pass_index: int = 0) -> float:
        """Like :meth:`scheduled_monotonic` on the ``time.time()`` scale."""
        assert self.start_wall_time is not None and self.start_monotonic is not None
        return self.scheduled_monotonic(bag_ns, pass_index) - self.start_monotonic \
            + self.start_wall_time

    # ----------------------------------------------------------------- playing
    def stop(self) -> None:
        """Ask :meth:`play` to return as soon as possible (thread-safe, idempotent)."""
        self.stopped = True
        self._stop.set()

    def wait_for_matched(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` s until every data publisher has a subscription; return the
        topics still without one (empty when all matched or when stopped)."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = [t.out for t in self._topics if t.out in self.wait_topics
                       and self._pubs[t.name].get_subscription_count() < 1]
            if not waiting or self._stop.is_set():
                return [] if self._stop.is_set() else waiting
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return waiting
            self._stop.wait(min(0.01, remaining))

    def _publish_clock(self, ns: int) -> None:
        if self._clock_pub is None:
            return
        if self.last_clock_ns is not None and ns < self.last_clock_ns:
            ns = self.last_clock_ns  # never backwards
        msg = self._clock_cls()
        msg.clock.sec, msg.clock.nanosec = divmod(int(ns), 1_000_000_000)
        self._clock_pub.publish(msg)
        self.last_clock_ns = ns
        self.clock_count += 1

    def _wait_until(self, due: float, clock_at_due: int) -> None:
        """Sleep until monotonic ``due``, publishing /clock at ``clock_hz`` meanwhile."""
        period = 1.0 / self.clock_hz if self._clock_pub is not None and self.clock_hz else None
        while not self._stop.is_set():
            now = time.monotonic()
            remaining = due - now
            if remaining <= 0:
                return
            if period is None:
                self._stop.wait(remaining)
                continue
            assert self.start_monotonic is not None
            elapsed_bag = int((now - self.start_monotonic) * self.rate * 1e9)
            self._publish_clock(min(self.bag_start_ns + elapsed_bag, clock_at_due))
            self._stop.wait(min(period, remaining))

    def play(self) -> dict[str, int]:
        """Publish the bag (all passes); return :attr:`counts`. Blocks; :meth:`stop` ends it."""
        if self.wait_for_subscribers > 0 and self.wait_topics:
            waiting = self.wait_for_matched(self.wait_for_subscribers)
            if waiting:
                text = (f"no subscriber matched {', '.join(waiting)} within "
                        f"{self.wait_for_subscribers:g} s")
                if self.wait_strict:
                    raise BagError(text + " (is the consumer running, in the same "
                                   "ROS_DOMAIN_ID, with compatible QoS?)")
                self.node.get_logger().warning(text + "; playing anyway")
        self.start_monotonic = time.monotonic()
        self.start_wall_time = time.time()
        self._publish_clock(self.bag_start_ns)
        pass_index = 0
        try:
            while not self._stop.is_set() and (self.passes == 0 or pass_index < self.passes):
                self._play_pass(pass_index)
                if self._stop.is_set():
                    break
                pass_index += 1
                self.passes_done = pass_index
        finally:
            self.end_monotonic = time.monotonic()
        # after stop() nobody waits for the last messages (and an ack can take a DDS heartbeat
        # period, 3 s with Fast DDS's defaults): flush only when the bag was played to the end
        # (ack_timeout 0: the caller keeps its process alive and does not need the flush)
        self.unacked = ([] if self._stop.is_set() or self.ack_timeout <= 0
                        else self.flush(self.ack_timeout))
        if self.unacked:
            self.node.get_logger().warning(
                f"not every subscriber acknowledged the last messages on "
                f"{', '.join(self.unacked)} within {self.ack_timeout:g} s")
        return self.counts

    def flush(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` s until every reliable subscriber acknowledged everything
        published; return the topics still unacknowledged. Without this, the last messages
        are lost when the process exits right after :meth:`play` (the writer is destroyed
        before the reader got or re-requested them)."""
        from rclpy.duration import Duration
        deadline = time.monotonic() + max(0.0, timeout)
        pending = [(t.out, self._pubs[t.name]) for t in self._topics]
        if self._clock_pub is not None:
            pending.append(("/clock", self._clock_pub))
        late = []
        for name, pub in pending:
            left = max(0.0, deadline - time.monotonic())
            if not pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))):
                late.append(name)
        return late

    def _play_pass(self, pass_index: int) -> None:
        out = {t.name: t.out for t in self._topics}
        if not self._connections:
            return
        for conn, ts, data in self._reader.messages(self._connections):
            if self._stop.is_set():
                return
            clock = self.clock_ns(ts, pass_index)
            if not self.as_fast_as_possible:
                self._wait_until(self.scheduled_monotonic(ts, pass_index), clock)
                if self._stop.is_set():
                    return
            self._publish_clock(clock)
            self._pubs[conn.topic].publish(data if type(data) is bytes else bytes(data))
            topic = out[conn.topic]
            self.counts[topic] += 1
            if self.on_publish is not None:
                self.on_publish(topic, ts, pass_index, time.monotonic())

    @property
    def duration_s(self) -> float:
        """Wall-clock seconds :meth:`play` took (so far)."""
        if self.start_monotonic is None:
            return 0.0
        end = self.end_monotonic if self.end_monotonic is not None else time.monotonic()
        return end - self.start_monotonic

    def summary(self) -> str:
        """One line: messages per topic, passes, duration."""
        per_topic = " ".join(f"{topic}={n}" for topic, n in sorted(self.counts.items()))
        total = sum(self.counts.values())
        passes = "stopped" if self.stopped else f"{self.passes_done} pass(es)"
        clock = f", /clock={self.clock_count}" if self._clock_pub is not None else ""
        return (f"bag_player: {total} messages in {self.duration_s:.2f} s ({passes}, rate "
                f"{self.rate:g}{clock}): {per_topic or 'no topics'}")

    def close(self) -> None:
        """Destroy the publishers (and the node when the player created it); close the bag."""
        if self._reader.is_open:
            self._reader.close()
        if self._own_node:
            self.node.destroy_node()
        else:
            for pub in self._pubs.values():
                self.node.destroy_publisher(pub)
            if self._clock_pub is not None:
                self.node.destroy_publisher(self._clock_pub)
        self._pubs = {}
        self._clock_pub = None


# --------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bag_player",
        description="Play a rosbag2 (sqlite3 or mcap) on ROS 2 topics (like ros2 bag play).")
    p.add_argument("bag", help="rosbag2 folder (or a .mcap / .db3 file)")
    p.add_argument("--rate", type=float, default=1.0,
                   help="playback speed factor (2 = twice as fast; 0 or inf = as fast as "
                        "possible); default 1")
    p.add_argument("--loop", action="store_true",
                   help="play again and again until stopped; /clock keeps counting up across "
                        "passes (the messages' header stamps repeat)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="play N times (ignored with --loop); default 1")
    p.add_argument("--clock", nargs="?", type=float, const=DEFAULT_CLOCK_HZ, default=None,
                   metavar="HZ", help=f"publish /clock (default {DEFAULT_CLOCK_HZ:g} Hz while "
                                      "waiting, plus at every message); put BAG before it")
    p.add_argument("--topics", nargs="+", metavar="T", help="play only these bag topics")
    p.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO",
                   help="publish bag topic FROM on TO")
    p.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for a subscriber on every topic before playing")
    p.add_argument("--wait-topics", nargs="+", metavar="T",
                   help="wait only for subscribers of these (published) topics; default all")
    p.add_argument("--warn-only", action="store_true",
                   help="when --wait-for-subscribers times out, warn and play anyway")
    p.add_argument("--qos", choices=QOS_CHOICES, default="reliable",
                   help="reliability of the data publishers (depth 10); default reliable")
    return p


def _init(args: list[str]) -> None:
    """rclpy.init without rclpy's signal handlers (we stop the player ourselves)."""
    try:
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):  # very old rclpy
        rclpy.init(args=args)


def split_ros_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(own, ros)``: the ``--ros-args ... [--]`` sections go to ``ros`` (with their
    ``--ros-args`` markers), everything else to ``own``.

    Not ``rclpy.utilities.remove_ros_args``: rcl also takes a bare ``FROM:=TO`` outside
    ``--ros-args`` for a (deprecated) remap rule and would swallow the values of ``--remap``."""
    own: list[str] = []
    ros: list[str] = []
    inside = False
    for arg in args:
        if arg == "--ros-args":
            inside = True
            ros.append(arg)
        elif inside and arg == "--":
            inside = False
        elif inside:
            ros.append(arg)
        else:
            own.append(arg)
    return own, ros


def main(argv: Sequence[str] | None = None) -> int:
    """``bag_player`` console script; returns the exit code."""
    own, ros_args = split_ros_args(sys.argv[1:] if argv is None else list(argv))
    full = ["bag_player", *ros_args]  # what rclpy.init sees: only the ROS arguments
    try:
        opts = _parser().parse_args(own)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        remaps = parse_remaps(opts.remap)
    except ConfigError as exc:
        print(f"bag_player: error: {exc}", file=sys.stderr)
        return 2

    player: BagPlayer | None = None
    interrupted = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, _frame: Any) -> None:
        interrupted.set()
        if player is not None:
            player.stop()

    _init(full)
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not the main thread (main() called from a test thread)
                pass
        try:
            player = BagPlayer(opts.bag, rate=opts.rate,
                               loop=True if opts.loop else opts.repeat, clock_hz=opts.clock,
                               topics=opts.topics, remaps=remaps,
                               wait_for_subscribers=opts.wait_for_subscribers,
                               wait_strict=not opts.warn_only, wait_topics=opts.wait_topics,
                               qos=opts.qos)
        except CropWeedSegError as exc:
            print(f"bag_player: error: {exc}", file=sys.stderr)
            return 2
        try:
            if interrupted.is_set():
                player.stop()
            player.play()
            print(player.summary(), flush=True)
        except BagError as exc:
            print(f"bag_player: error: {exc}", file=sys.stderr)
            return 2
        finally:
            player.close()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        rclpy.utilities.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
