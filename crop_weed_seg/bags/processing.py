"""Offline processing of a rosbag2: every camera frame through the Segmenter and the spray-target
pipeline, written to a new bag next to the original messages. No ROS installation needed: bags
are read and written with the pure-Python ``rosbags`` library (imported lazily) through
:mod:`crop_weed_seg.bags.rosbag_io`, messages are (de)serialised with its ``ROS2_HUMBLE``
typestore; nothing here imports rclpy or a ROS message package.

What :func:`process_bag` does (README, "Processing bags offline"):

- reads every message of the input bag in its stored order and copies it unchanged (same
  connection, same bag timestamp, the same serialised bytes) into the output bag;
- ``camera_info`` and odometry messages feed the :class:`TargetPipeline` as they come (a frame
  whose CameraInfo comes later in the bag has no geometry, exactly as on the robot);
- each image message is decoded (a frame that cannot be used is skipped and counted with its
  reason, never a crash), segmented and turned into spray targets by the same
  :class:`~crop_weed_seg.perception.frame.FrameProcessor` as the node's (without a clock: only
  the image stamps count), and three messages are added at
  the image's bag timestamp: ``<base>/labels`` (sensor_msgs/Image mono8, the image's header),
  ``<base>/spray_targets`` (sensor_msgs/PointCloud2 in the layout of
  :data:`crop_weed_seg.spray.records.POINT_FIELDS`, frame ``target_frame``, every processed
  frame, empty when there is no target) and, with ``overlay``, ``<base>/overlay`` (bgr8);
- the output is written into a hidden temporary folder next to ``out_path`` and renamed to
  ``out_path`` only when complete: after a failure there is never a bag at ``out_path``.

``<base>`` is the image topic without its transport suffix (:func:`image_base`):
``/camera/image/compressed``, ``/camera/image``, ``/camera/image_raw`` → ``/camera``.

Topic choice when not given (:func:`select_topics`): images are the ``sensor_msgs/Image`` and
``sensor_msgs/CompressedImage`` topics, except ground truth (``…labels_truth``) and outputs of
this package (``…/labels``, ``…/confidence``, ``…/overlay``). Candidates of one camera (the same
``<base>``, e.g. ``image_raw`` and ``image_raw/compressed``) resolve to the raw Image topic (no
JPEG loss); candidates of two cameras are an error that lists them. CameraInfo: ``<base>/
camera_info``, else the only CameraInfo topic, else none (several: error). Odometry: the only
``nav_msgs/Odometry`` topic, else ``/odom``, else none (several: error). Ground truth (for
``export_frames``): ``<base>/labels_truth``, else the only topic ending in ``labels_truth``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The rosbag2 plumbing lives in rosbag_io; the names below stay importable from here (the bag
# dataset, the bag player and the tests use them).
from crop_weed_seg.bags.rosbag_io import (
    CAMERA_INFO_TYPE,
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    IMAGE_TYPES,
    ODOMETRY_TYPE,
    POINTCLOUD_TYPE,
    STORAGES,
    BagProcessingError,
    BagWriter,
    atomic_output,
    header_stamp_ns,
    iter_messages,
    make_header,
    open_reader,
    open_writer,
    serialize,
    storage_of,
    typestore,
)
from crop_weed_seg.bags.rosbag_io import is_bag_path as is_bag_path
from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.image_files import write_bytes_atomic, write_image_atomic
from crop_weed_seg.perception.frame import (
    Frame,
    FrameProcessor,
    FrameResult,
    FrameSettings,
    decode_message,
    overlay_bgr8,
)
from crop_weed_seg.perception.image_conversion import to_rgb8
from crop_weed_seg.perception.segmenter import Segmenter
from crop_weed_seg.spray.pipeline import SpraySettings
from crop_weed_seg.spray.records import POINT_FIELDS, POINT_STEP, POINTFIELD_DATATYPES, TARGET_DTYPE
from crop_weed_seg.stamps import header_stamp_ns as message_stamp_ns
from crop_weed_seg.stamps import stamp_seconds

TRUTH_SUFFIX = "labels_truth"
#: topic name endings that are outputs of this package, never camera inputs
OUTPUT_SUFFIXES = ("/labels", "/confidence", "/overlay")
_TRANSPORT_SUFFIXES = ("/image_rect_color", "/image_rect", "/image_color", "/image_raw",
                       "/image")
CSV_COLUMNS = ("stamp", "bag_time_ns", "status", "soil", "crop", "weed", "weed_targets",
               "decode_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "targets_ms")
STAGES = ("decode_ms", "preprocess_ms", "infer_ms", "postprocess_ms", "targets_ms")
_PENDING_EXPORT = 256   # frames waiting for their ground truth (or the truth for its frame)


# --------------------------------------------------------------------------------------------
# Small helpers shared with bag_dataset
# --------------------------------------------------------------------------------------------


def stamp_stem(stamp_ns: int) -> str:
    """File stem of a frame: ``<sec>_<nanosec>``, zero padded so names sort by time."""
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    return f"{sec:010d}_{nsec:09d}"


def image_base(topic: str) -> str:
    """The camera namespace of an image topic: ``/camera/image/compressed``, ``/camera/image``,
    ``/camera/image_raw`` (also ``image_rect``, ``image_color``, ``image_rect_color``) →
    ``/camera``; any other name stays as is (``/cam0/rgb`` → ``/cam0/rgb``)."""
    base = topic[:-len("/compressed")] if topic.endswith("/compressed") else topic
    for suffix in _TRANSPORT_SUFFIXES:
        if base.endswith(suffix):
            return base[:-len(suffix)]
    return base


def decode_image(msg: Any, msgtype: str) -> tuple[np.ndarray, str]:
    """(array, channel order) of a deserialised Image or CompressedImage; InvalidFrameError."""
    frame = decode_message(msg, msgtype == COMPRESSED_TYPE)
    return frame.array, frame.order


def decode_truth(msg: Any, msgtype: str) -> np.ndarray:
    """Ground-truth labels (H, W) uint8 from a mono8 Image or a PNG CompressedImage."""
    array, _ = decode_image(msg, msgtype)
    if array.ndim != 2 or array.dtype != np.uint8:
        raise InvalidFrameError(f"ground-truth labels must be one 8-bit channel, got shape "
                                f"{array.shape} {array.dtype}")
    return np.ascontiguousarray(array)


# --------------------------------------------------------------------------------------------
# Topic selection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    image: str
    image_type: str
    camera_info: str | None
    odom: str | None
    truth: str | None
    truth_type: str | None

    @property
    def base(self) -> str:
        return image_base(self.image)

    def output(self, name: str) -> str:
        return f"{self.base}/{name}"


def _types(connections: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in connections:
        out.setdefault(c.topic, c.msgtype)
    return out


def _listing(topics: dict[str, str], names: Any) -> str:
    return ", ".join(f"{n} ({topics[n]})" for n in sorted(names)) or "none"


def select_topics(connections: Any, bag: Path, image_topic: str | None = None,
                  camera_info_topic: str | None = None, odom_topic: str | None = None,
                  truth_topic: str | None = None, find_truth: bool = True) -> Topics:
    """Resolve the topics to use (module docstring for the automatic rules); every problem is a
    BagProcessingError naming the bag and listing the candidates."""
    types = _types(connections)
    where = f"bag {str(bag)!r}"
    candidates = sorted(t for t, ty in types.items() if ty in IMAGE_TYPES
                        and not t.endswith(TRUTH_SUFFIX) and not t.endswith(OUTPUT_SUFFIXES))
    if image_topic is not None:
        if image_topic not in types:
            raise BagProcessingError(f"{where} has no topic {image_topic!r}; image topics: "
                                     f"{_listing(types, candidates)}")
        if types[image_topic] not in IMAGE_TYPES:
            raise BagProcessingError(
                f"{where}: topic {image_topic} is {types[image_topic]}, not an image "
                f"({IMAGE_TYPE} or {COMPRESSED_TYPE}); image topics: "
                f"{_listing(types, candidates)}")
        image = image_topic
    else:
        if not candidates:
            raise BagProcessingError(f"{where} has no image topic ({IMAGE_TYPE} or "
                                     f"{COMPRESSED_TYPE}); topics: {_listing(types, types)}")
        bases = {image_base(t) for t in candidates}
        if len(bases) > 1:
            raise BagProcessingError(f"{where} has images from several cameras; choose one with "
                                     f"--image-topic: {_listing(types, candidates)}")
        raw = [t for t in candidates if types[t] == IMAGE_TYPE]
        image = raw[0] if raw else candidates[0]
        if len(raw) > 1 or (not raw and len(candidates) > 1):
            raise BagProcessingError(f"{where} has several image topics; choose one with "
                                     f"--image-topic: {_listing(types, candidates)}")
    base = image_base(image)

    def pick(given: str | None, msgtypes: tuple[str, ...], what: str, option: str,
             preferred: tuple[str, ...], match: Callable[[str], bool] = lambda _t: True
             ) -> str | None:
        if given is not None:
            if given not in types:
                raise BagProcessingError(f"{where} has no topic {given!r} ({what})")
            if types[given] not in msgtypes:
                raise BagProcessingError(f"{where}: topic {given} is {types[given]}, not "
                                         f"{' or '.join(msgtypes)} ({what})")
            return given
        found = sorted(t for t, ty in types.items() if ty in msgtypes and match(t))
        for p in preferred:
            if p in found:
                return p
        if len(found) > 1:
            raise BagProcessingError(f"{where} has several {what} topics; choose one with "
                                     f"{option}: {_listing(types, found)}")
        return found[0] if found else None

    info = pick(camera_info_topic, (CAMERA_INFO_TYPE,), "camera_info", "--camera-info-topic",
                (f"{base}/camera_info",))
    odom = pick(odom_topic, (ODOMETRY_TYPE,), "odometry", "--odom-topic", ("/odom",))
    truth = None
    if find_truth or truth_topic is not None:
        truth = pick(truth_topic, IMAGE_TYPES, "ground-truth labels", "--truth-topic",
                     (f"{base}/{TRUTH_SUFFIX}",), lambda t: t.endswith(TRUTH_SUFFIX))
    return Topics(image, types[image], info, odom, truth, types[truth] if truth else None)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    """What :func:`process_bag` did. ``skipped``: frames not processed, counted per reason
    category (``deserialize``, ``decode``, ``segment``); ``skip_examples``: the first message of
    each category. ``stages``: per stage ``{"mean": ms, "p95": ms}``."""

    input: str
    output: str
    storage: str
    topics: Topics
    messages_in: int = 0
    messages_out: int = 0
    frames: int = 0
    processed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skip_examples: dict[str, str] = field(default_factory=dict)
    targets: int = 0
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    total_s: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    exported_images: int = 0
    exported_labels: int = 0
    export_unmatched: int = 0
    backend: str = ""

    def to_json(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if k != "topics"}
        doc["topics"] = dict(self.topics.__dict__)
        return doc

    def summary(self) -> str:
        lines = [f"{self.input} -> {self.output} ({self.storage}, backend {self.backend})",
                 f"  image topic {self.topics.image} ({self.topics.image_type.split('/')[-1]}), "
                 f"camera_info {self.topics.camera_info or '-'}, odom {self.topics.odom or '-'}",
                 f"  frames {self.frames}: processed {self.processed}, skipped "
                 f"{sum(self.skipped.values())}"
                 + "".join(f"\n    {k}: {n} (e.g. {self.skip_examples.get(k, '')})"
                           for k, n in sorted(self.skipped.items())),
                 f"  weed targets {self.targets}; messages in {self.messages_in}, "
                 f"out {self.messages_out}"]
        if self.stages:
            lines.append("  stage ms (mean / p95): " + ", ".join(
                f"{k[:-3]} {v['mean']:.1f} / {v['p95']:.1f}" for k, v in self.stages.items()))
        nonzero = {k: v for k, v in self.counters.items() if v}
        if nonzero:
            lines.append("  " + ", ".join(f"{k} {v}" for k, v in sorted(nonzero.items())))
        if self.exported_images:
            lines.append(f"  exported {self.exported_images} images, {self.exported_labels} "
                         f"labels ({self.export_unmatched} frames without ground truth)")
        lines.append(f"  total {self.total_s:.2f} s")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Output messages
# --------------------------------------------------------------------------------------------


class _Builder:
    """Serialised output messages, built with the rosbags typestore."""

    def __init__(self, ts: Any, target_frame: str) -> None:
        self.ts = ts
        T = ts.types
        self.Image = T[IMAGE_TYPE]
        self.Cloud = T[POINTCLOUD_TYPE]
        PointField = T["sensor_msgs/msg/PointField"]
        self.fields = [PointField(name=name, offset=offset,
                                  datatype=POINTFIELD_DATATYPES[kind], count=1)
                       for name, kind, offset, _ in POINT_FIELDS]
        self.target_frame = target_frame

    def _header(self, header: Any, frame_id: str | None = None) -> Any:
        return make_header(self.ts, str(header.frame_id) if frame_id is None else frame_id,
                           int(header.stamp.sec), int(header.stamp.nanosec))

    def image(self, header: Any, array: np.ndarray, encoding: str) -> bytes:
        a = np.ascontiguousarray(array)
        h, w = a.shape[:2]
        step = w * (a.shape[2] if a.ndim == 3 else 1)
        msg = self.Image(header=self._header(header), height=h, width=w, encoding=encoding,
                         is_bigendian=0, step=step, data=a.reshape(-1).view(np.uint8))
        return serialize(self.ts, msg, IMAGE_TYPE)

    def cloud(self, header: Any, records: np.ndarray) -> bytes:
        n = int(len(records))
        data = np.frombuffer(np.ascontiguousarray(records, TARGET_DTYPE).tobytes(), np.uint8)
        msg = self.Cloud(header=self._header(header, self.target_frame), height=1, width=n,
                         fields=self.fields, is_bigendian=False, point_step=POINT_STEP,
                         row_step=POINT_STEP * n, data=data, is_dense=True)
        return serialize(self.ts, msg, POINTCLOUD_TYPE)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


class _Exporter:
    """Frames (and their ground truth, matched by header stamp) in the folder layout."""

    def __init__(self, folder: Path, with_truth: bool) -> None:
        self.folder = Path(folder)
        self.with_truth = with_truth
        self.images: OrderedDict[int, np.ndarray] = OrderedDict()
        self.truth: OrderedDict[int, np.ndarray] = OrderedDict()
        self.written_images = 0
        self.written_labels = 0
        self.unmatched = 0

    def _write(self, stamp: int, rgb: np.ndarray, labels: np.ndarray | None) -> None:
        stem = stamp_stem(stamp)
        write_image_atomic(self.folder / "images" / f"{stem}.png", rgb, rgb=True)
        self.written_images += 1
        if labels is not None:
            write_image_atomic(self.folder / "labels" / f"{stem}.png", labels, rgb=False)
            self.written_labels += 1

    def add_image(self, stamp: int, rgb: np.ndarray) -> None:
        if not self.with_truth:
            self._write(stamp, rgb, None)
            return
        truth = self.truth.pop(stamp, None)
        if truth is not None:
            self._write(stamp, rgb, truth)
            return
        self.images[stamp] = rgb
        while len(self.images) > _PENDING_EXPORT:
            self.images.popitem(last=False)
            self.unmatched += 1

    def add_truth(self, stamp: int, labels: np.ndarray) -> None:
        rgb = self.images.pop(stamp, None)
        if rgb is not None:
            self._write(stamp, rgb, labels)
            return
        self.truth[stamp] = labels
        while len(self.truth) > _PENDING_EXPORT:
            self.truth.popitem(last=False)

    def finish(self) -> None:
        self.unmatched += len(self.images)   # frames whose truth never came are not exported
        self.images.clear()


# --------------------------------------------------------------------------------------------
# process_bag
# --------------------------------------------------------------------------------------------


def _fmt_stamp(stamp_ns: int) -> str:
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return f"{sec}.{nsec:09d}"


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def process_bag(in_path: Path | str, out_path: Path | str, *, model_dir: Path | str | None = None,
                backend: str = "auto", image_topic: str | None = None,
                camera_info_topic: str | None = None, odom_topic: str | None = None,
                truth_topic: str | None = None, overlay: bool = False,
                settings: SpraySettings = SpraySettings(), target_frame: str = "base_link",
                export_frames: Path | str | None = None, csv_path: Path | str | None = None,
                storage: str | None = None, overwrite: bool = False,
                progress: Callable[[int, int], None] | None = None,
                segmenter: Any = None) -> Report:
    """Process ``in_path`` into a new bag at ``out_path`` (module docstring). ``storage``:
    ``"sqlite3"`` or ``"mcap"`` (None: as the input). ``progress(done, total)`` is called after
    every message. ``segmenter``: an already loaded
    :class:`~crop_weed_seg.perception.segmenter.Segmenter` to use instead of loading
    ``model_dir`` on ``backend`` (None: the shipped default model).
    ``export_frames``: also write the frames (and ground truth) in the folder layout there.
    Raises BagProcessingError (bad bag, topics, output exists) or ConfigError (options)."""
    in_path, out_path = Path(in_path), Path(out_path)
    if storage is not None and storage not in STORAGES:
        raise ConfigError(f"storage {storage!r} is not one of {', '.join(STORAGES)}")
    if in_path.resolve() == out_path.resolve():
        raise BagProcessingError(f"output {str(out_path)!r} is the input bag")
    started = time.perf_counter()
    reader = open_reader(in_path)
    try:
        in_storage = storage_of(in_path)
        out_storage = storage or (in_storage if in_storage in STORAGES else "mcap")
        topics = select_topics(reader.connections, in_path, image_topic, camera_info_topic,
                               odom_topic, truth_topic, find_truth=export_frames is not None)
        outputs = _output_topics(reader.connections, in_path, topics, overlay)
        if segmenter is None:
            segmenter = _load_segmenter(model_dir, backend)
        with atomic_output(out_path, overwrite) as bag:
            report = _run(reader, in_path, bag, out_storage, topics, outputs, segmenter,
                          overlay, settings, target_frame, export_frames, csv_path, progress)
    finally:
        reader.close()
    report.output = str(out_path)
    report.total_s = time.perf_counter() - started
    return report


def _output_topics(connections: Any, in_path: Path, topics: Topics, overlay: bool) -> list[str]:
    """``<base>/labels``, ``<base>/spray_targets`` (and ``<base>/overlay``); an error if the
    input bag has one of them already."""
    outputs = [topics.output("labels"), topics.output("spray_targets")] + \
        ([topics.output("overlay")] if overlay else [])
    existing = {c.topic for c in connections}
    clash = [t for t in outputs if t in existing]
    if clash:
        raise BagProcessingError(f"bag {str(in_path)!r} already has the output topic(s) "
                                 f"{', '.join(clash)} (was it processed already?)")
    return outputs


def _load_segmenter(model_dir: Path | str | None, backend: str) -> Segmenter:
    if model_dir is None:
        model_dir = Path(__file__).resolve().parents[1] / "models" / "default"
    return Segmenter(Path(model_dir), backend)


def _run(reader: Any, in_path: Path, bag: Path, out_storage: str, topics: Topics,
         outputs: list[str], segmenter: Any, overlay: bool, settings: SpraySettings,
         target_frame: str, export_frames: Path | str | None, csv_path: Path | str | None,
         progress: Callable[[int, int], None] | None) -> Report:
    """One pass over the input bag into the new bag ``bag``, then the statistics and the CSV."""
    run = _Run(in_path, out_storage, topics, segmenter, settings, target_frame, export_frames)
    total = int(reader.message_count or 0)
    with open_writer(bag, out_storage, run.ts) as writer:
        out = _Outputs.open(writer, reader.connections, in_path, outputs, overlay)
        for conn, t_ns, raw in iter_messages(reader, in_path):
            if run.handle(out, conn, t_ns, raw) and progress is not None:
                progress(run.report.messages_in, total)
    run.report.messages_out = writer.messages
    run.finish()
    if csv_path is not None:
        _write_csv(csv_path, run.rows)
    return run.report


@dataclass
class _Outputs:
    """The new bag: its writer, the copies of the input connections (by input connection id)
    and the connections of the outputs (``overlay`` None without ``--overlay``)."""

    writer: BagWriter
    copies: dict[int, Any]
    labels: Any
    cloud: Any
    overlay: Any

    @classmethod
    def open(cls, writer: BagWriter, connections: Any, in_path: Path, outputs: list[str],
             overlay: bool) -> _Outputs:
        copies = writer.copy_connections(connections, in_path)
        labels = writer.add_connection(outputs[0], IMAGE_TYPE)
        cloud = writer.add_connection(outputs[1], POINTCLOUD_TYPE)
        over = writer.add_connection(outputs[2], IMAGE_TYPE) if overlay else None
        return cls(writer, copies, labels, cloud, over)


class _Run:
    """The state of one pass: the frame processor fed with camera_info and odometry, the image
    frames processed into output messages, the ground truth for the export, the CSV rows and
    the statistics of the report."""

    def __init__(self, in_path: Path, out_storage: str, topics: Topics, segmenter: Any,
                 settings: SpraySettings, target_frame: str,
                 export_frames: Path | str | None) -> None:
        self.ts = typestore()
        self.build = _Builder(self.ts, target_frame)
        self.processor = FrameProcessor(segmenter, FrameSettings(spray=settings))
        self.topics = topics
        self.report = Report(str(in_path), "", out_storage, topics,
                             backend=str(getattr(getattr(segmenter, "backend", None), "name",
                                                 "")))
        self.exporter = _Exporter(Path(export_frames), topics.truth is not None) \
            if export_frames is not None else None
        self.times: dict[str, list[float]] = {s: [] for s in STAGES}
        self.rows: list[list[Any]] = []
        self.skipped: Counter[str] = Counter()
        self.bad_odom = 0

    def handle(self, out: _Outputs, conn: Any, t_ns: int, raw: bytes) -> bool:
        """Copy one input message into the new bag and use it. False for an image frame that
        was skipped: the caller reports progress only for the other messages."""
        self.report.messages_in += 1
        out.writer.write(out.copies[conn.id], t_ns, raw)
        topic = conn.topic
        if topic == self.topics.camera_info:
            self._camera_info(raw, conn.msgtype)
        elif topic == self.topics.odom:
            self._odometry(raw, conn.msgtype)
        elif self.exporter is not None and topic == self.topics.truth:
            self._truth(self.exporter, raw, conn.msgtype)
        elif topic == self.topics.image:
            return self._image(out, raw, conn.msgtype, t_ns)
        return True

    def _camera_info(self, raw: bytes, msgtype: str) -> None:
        try:
            info = self.ts.deserialize_cdr(raw, msgtype)
            self.processor.set_camera_info(info.k, info.d, int(info.width), int(info.height),
                                           str(info.distortion_model))
        except InvalidFrameError:
            pass  # counted in pipeline.counters["bad_camera_info"]
        except Exception:
            self.processor.pipeline.counters["bad_camera_info"] += 1

    def _odometry(self, raw: bytes, msgtype: str) -> None:
        try:
            odo = self.ts.deserialize_cdr(raw, msgtype)
            if not self.processor.update_odometry(stamp_seconds(message_stamp_ns(odo.header)),
                                                  odo.twist.twist.linear.x,
                                                  odo.twist.twist.linear.y):
                self.bad_odom += 1
        except Exception:
            self.bad_odom += 1

    def _truth(self, exporter: _Exporter, raw: bytes, msgtype: str) -> None:
        try:
            msg = self.ts.deserialize_cdr(raw, msgtype)
            exporter.add_truth(message_stamp_ns(msg.header), decode_truth(msg, msgtype))
        except Exception:
            pass  # its frame is then not exported (counted as unmatched)

    def _image(self, out: _Outputs, raw: bytes, msgtype: str, t_ns: int) -> bool:
        self.report.frames += 1
        stamp_ns = header_stamp_ns(raw)
        if stamp_ns is None:
            stamp_ns = t_ns
        processed = self._process(raw, msgtype, stamp_ns, t_ns)
        if processed is None:
            return False
        msg, frame, result = processed
        self._write_outputs(out, t_ns, msg.header, frame, result)
        if self.exporter is not None:
            self.exporter.add_image(stamp_ns, to_rgb8(frame.array, frame.order))
        self._count(stamp_ns, t_ns, result)
        return True

    def _process(self, raw: bytes, msgtype: str, stamp_ns: int, t_ns: int
                 ) -> tuple[Any, Frame, FrameResult] | None:
        """(message, frame, result) of one image message, or None when it was skipped."""
        t0 = time.perf_counter()
        try:
            msg = self.ts.deserialize_cdr(raw, msgtype)
        except Exception as exc:
            self._skip("deserialize", f"{type(exc).__name__}: {exc}", stamp_ns, t_ns)
            return None
        try:
            frame = decode_message(msg, msgtype == COMPRESSED_TYPE, started=t0)
        except InvalidFrameError as exc:
            self._skip("decode", str(exc), stamp_ns, t_ns)
            return None
        try:
            result = self.processor.process(frame, want_confidence=False)
        except InvalidFrameError as exc:
            self._skip("segment", str(exc), stamp_ns, t_ns)
            return None
        return msg, frame, result

    def _skip(self, category: str, reason: str, stamp_ns: int, t_ns: int) -> None:
        self.skipped[category] += 1
        self.report.skip_examples.setdefault(category, reason)
        self.rows.append([_fmt_stamp(stamp_ns), t_ns, f"skipped ({category}): {reason}"]
                         + [""] * 9)

    def _write_outputs(self, out: _Outputs, t_ns: int, header: Any, frame: Frame,
                       result: FrameResult) -> None:
        """labels, spray_targets (and overlay) at the image's bag time, with its header."""
        out.writer.write(out.labels, t_ns, self.build.image(header, result.labels, "mono8"))
        out.writer.write(out.cloud, t_ns, self.build.cloud(header, result.targets))
        if out.overlay is not None:
            bgr = overlay_bgr8(frame.array, frame.order, result.labels)
            out.writer.write(out.overlay, t_ns, self.build.image(header, bgr, "bgr8"))

    def _count(self, stamp_ns: int, t_ns: int, result: FrameResult) -> None:
        """Stage timings, totals and the CSV row of a processed frame."""
        tm = result.timings
        stage = {"decode_ms": tm.decode_ms, "preprocess_ms": tm.preprocess_ms,
                 "infer_ms": tm.infer_ms, "postprocess_ms": tm.postprocess_ms,
                 "targets_ms": tm.targets_ms}
        for k, v in stage.items():
            self.times[k].append(v)
        n_targets = len(result.targets)
        self.report.processed += 1
        self.report.targets += n_targets
        cov = result.coverage
        self.rows.append([_fmt_stamp(stamp_ns), t_ns, "ok", f"{cov.get('soil', 0):.6f}",
                          f"{cov.get('crop', 0):.6f}", f"{cov.get('weed', 0):.6f}",
                          n_targets] + [f"{stage[k]:.3f}" for k in STAGES])

    def finish(self) -> None:
        """The export's last frames and the statistics into the report."""
        report = self.report
        if self.exporter is not None:
            self.exporter.finish()
            report.exported_images = self.exporter.written_images
            report.exported_labels = self.exporter.written_labels
            report.export_unmatched = self.exporter.unmatched
        report.skipped = dict(self.skipped)
        report.stages = {k: {"mean": float(np.mean(v)) if v else math.nan, "p95": _p95(v)}
                         for k, v in self.times.items()}
        report.counters = dict(self.processor.pipeline.counters, bad_odometry=self.bad_odom)


def _write_csv(csv_path: Path | str, rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    w.writerows(rows)
    write_bytes_atomic(csv_path, buf.getvalue().encode())
