"""The rosbag2 plumbing of the package, in one place: the typestore, opening and iterating a bag,
creating one (sqlite3 or mcap) that appears only once complete, its connections, message headers
and serialisation. Bags are read and written with the pure-Python ``rosbags`` library, imported
lazily (its ``ROS2_HUMBLE`` typestore); nothing here imports rclpy or a ROS message package.

Users: :mod:`crop_weed_seg.bags.processing` (the processed bag), :mod:`crop_weed_seg.sim.bag_writer`
(a simulated drive), ``test/fixtures/make_sample_bag.py`` (the sample bag), and the bag readers
(:mod:`crop_weed_seg.data.bag_dataset`, ``tools/bag_player.py``).

Writing::

    with atomic_output(out_path) as bag, open_writer(bag, "mcap") as writer:
        conn = writer.add_connection("/camera/image/compressed", COMPRESSED_TYPE)
        writer.write_message(conn, t_ns, compressed_image(writer.typestore, header, jpeg, "..."))

``atomic_output`` yields a path inside a hidden temporary folder next to ``out_path`` and renames
it to ``out_path`` only when the block ends without an exception: after a failure there is never
a bag (or half a bag) at ``out_path``.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from crop_weed_seg.errors import BagError
from crop_weed_seg.stamps import NS_PER_S, split_ns

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
ODOMETRY_TYPE = "nav_msgs/msg/Odometry"
POINTCLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
#: storage plugins a bag can be written with
STORAGES = ("sqlite3", "mcap")
#: rosbag2 metadata version written (what ROS 2 Humble and later read)
BAG_VERSION: Final = 9


class BagProcessingError(BagError):
    """A bag cannot be read, written or processed; the message names the bag and the reason."""


# --------------------------------------------------------------------------------------------
# Typestore, stamps, headers, serialisation
# --------------------------------------------------------------------------------------------


def typestore() -> Any:
    """The rosbags ``ROS2_HUMBLE`` typestore (message classes and CDR (de)serialisation)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def make_header(ts: Any, frame_id: str, sec: int, nanosec: int) -> Any:
    """A ``std_msgs/Header`` of the typestore ``ts``."""
    T = ts.types
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec,
                                                                            nanosec=nanosec),
                                    frame_id=frame_id)


def header_at(ts: Any, t_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` stamped ``t_ns`` (nanoseconds)."""
    return make_header(ts, frame_id, *split_ns(t_ns))


def header_stamp_ns(raw: bytes | memoryview) -> int | None:
    """The ``header.stamp`` of a CDR-serialised message whose first field is a std_msgs/Header
    (Image, CompressedImage, CameraInfo, …), without deserialising it; None if too short."""
    if len(raw) < 12:
        return None
    endian = "<" if raw[1] & 1 else ">"
    sec, nsec = struct.unpack_from(endian + "iI", raw, 4)
    return sec * NS_PER_S + nsec


def serialize(ts: Any, msg: Any, msgtype: str | None = None) -> bytes:
    """CDR bytes of ``msg`` (its own ``__msgtype__`` unless ``msgtype`` is given)."""
    return bytes(ts.serialize_cdr(msg, msgtype or msg.__msgtype__))


def compressed_image(ts: Any, header: Any, data: np.ndarray, fmt: str) -> Any:
    """A ``sensor_msgs/CompressedImage`` holding the encoded bytes ``data`` (e.g. the output of
    ``cv2.imencode``); ``fmt``: its format as image_transport writes it (``"rgb8; jpeg
    compressed bgr8"``, ``"mono8; png compressed mono8"``)."""
    return ts.types[COMPRESSED_TYPE](header=header, format=fmt,
                                     data=np.asarray(data, np.uint8).ravel())


def jpeg_image(ts: Any, header: Any, rgb: np.ndarray, quality: int = 90) -> Any:
    """An RGB frame as image_transport's ``compressed`` JPEG (``"rgb8; jpeg compressed bgr8"``)
    CompressedImage; BagProcessingError if OpenCV cannot encode it."""
    try:
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    except cv2.error as exc:
        ok, why = False, f": {exc}"
    else:
        why = ""
    if not ok:
        raise BagProcessingError(f"cannot encode a {rgb.shape} {rgb.dtype} frame as JPEG{why}")
    return compressed_image(ts, header, jpg, "rgb8; jpeg compressed bgr8")


def png_labels(ts: Any, header: Any, labels: np.ndarray) -> Any:
    """Class ids (H, W) uint8 as a PNG (``"mono8; png compressed mono8"``) CompressedImage;
    BagProcessingError if OpenCV cannot encode them."""
    try:
        ok, png = cv2.imencode(".png", labels)
    except cv2.error as exc:
        ok, why = False, f": {exc}"
    else:
        why = ""
    if not ok:
        raise BagProcessingError(f"cannot encode {labels.shape} {labels.dtype} labels as "
                                 f"PNG{why}")
    return compressed_image(ts, header, png, "mono8; png compressed mono8")


def camera_info(ts: Any, header: Any, width: int, height: int, k: np.ndarray, d: np.ndarray,
                p: np.ndarray, distortion_model: str = "plumb_bob") -> Any:
    """A ``sensor_msgs/CameraInfo`` of an unrectified camera (identity R, no binning, no ROI)."""
    T = ts.types
    roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                 do_rectify=False)
    return T[CAMERA_INFO_TYPE](header=header, height=height, width=width,
                               distortion_model=distortion_model,
                               d=np.asarray(d, np.float64), k=np.asarray(k, np.float64),
                               r=np.eye(3, dtype=np.float64).ravel(),
                               p=np.asarray(p, np.float64), binning_x=0, binning_y=0, roi=roi)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def storage_of(path: Path) -> str:
    """``"mcap"`` or ``"sqlite3"`` for a bag folder (its metadata.yaml) or a .mcap/.db3 file."""
    path = Path(path)
    if path.is_file():
        return {".mcap": "mcap", ".db3": "sqlite3"}.get(path.suffix.lower(), path.suffix)
    meta = path / "metadata.yaml"
    try:
        import yaml

        doc = yaml.safe_load(meta.read_text())
        return str(doc["rosbag2_bagfile_information"]["storage_identifier"])
    except Exception as exc:  # missing file, YAML error, missing key
        raise BagProcessingError(f"bag {str(path)!r}: cannot read the storage format from "
                                 f"{meta.name} ({type(exc).__name__}: {exc})") from None


def is_bag_path(path: Path | str) -> bool:
    """A rosbag2 folder (has metadata.yaml) or a single .mcap / .db3 file."""
    path = Path(path)
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.is_file() and path.suffix.lower() in (".mcap", ".db3")


def open_reader(path: Path | str) -> Any:
    """An open ``rosbags.rosbag2.Reader`` or one BagProcessingError naming the bag and why."""
    path = Path(path)
    try:
        from rosbags.rosbag2 import Reader
    except ImportError as exc:
        raise BagProcessingError(f"reading bags needs the Python package rosbags ({exc}); "
                                 "pip install rosbags") from None
    if not path.exists():
        raise BagProcessingError(f"bag {str(path)!r} does not exist")
    if not is_bag_path(path):
        raise BagProcessingError(f"{str(path)!r} is not a rosbag2: a folder with a "
                                 "metadata.yaml (this one has no metadata.yaml) or a .mcap / "
                                 ".db3 file was expected")
    try:
        reader = Reader(path)
        reader.open()
        reader.connections  # noqa: B018 - some readers fail only here
    except Exception as exc:  # rosbags raises ReaderError, KeyError, YAML, sqlite errors, ...
        raise BagProcessingError(f"bag {str(path)!r} is not a readable rosbag2 (sqlite3 or "
                                 f"mcap): {type(exc).__name__}: {exc}") from None
    return reader


def iter_messages(reader: Any, path: Path, connections: Any = ()) -> Iterator[tuple[Any, int,
                                                                                   bytes]]:
    """``reader.messages()`` with read errors (truncated or corrupt storage) as one
    BagProcessingError naming the bag."""
    it = reader.messages(connections=connections) if connections else reader.messages()
    count = 0
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except Exception as exc:
            raise BagProcessingError(f"bag {str(path)!r} is corrupt or truncated: reading failed "
                                     f"after {count} messages ({type(exc).__name__}: {exc})"
                                     ) from None
        count += 1
        yield item


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@contextmanager
def atomic_output(out_path: Path | str, overwrite: bool = False,
                  hint: str = "choose another path or pass --overwrite") -> Iterator[Path]:
    """The path to write a bag to: ``out_path``'s name inside a hidden temporary folder next to
    it (``.<name>.*.partial``), renamed to ``out_path`` when the block ends without an exception
    (``overwrite``: an existing ``out_path`` is replaced only then). The temporary folder is
    removed in every case. An existing ``out_path`` without ``overwrite`` is a
    BagProcessingError (``hint`` says what to do)."""
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise BagProcessingError(f"output {str(out_path)!r} exists; {hint}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", suffix=".partial",
                                dir=out_path.parent))
    bag = tmp / out_path.name
    try:
        yield bag
        if out_path.exists():  # overwrite: replace only now that the new bag is complete
            os.replace(out_path, tmp / ".replaced")
        os.replace(bag, out_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BagWriter:
    """An open ``rosbags.rosbag2.Writer`` with its typestore; counts the messages written."""

    def __init__(self, writer: Any, ts: Any) -> None:
        self.writer = writer
        self.typestore = ts
        self.messages = 0

    def add_connection(self, topic: str, msgtype: str) -> Any:
        """A new connection for a message type of the typestore (its definition and hash from
        the typestore, rosbags' default serialisation format and offered QoS profiles)."""
        return self.writer.add_connection(topic, msgtype, typestore=self.typestore)

    def copy_connection(self, conn: Any) -> Any:
        """A connection like ``conn`` of another bag: the same topic, type, message definition,
        type hash, serialisation format and offered QoS profiles."""
        return self.writer.add_connection(
            conn.topic, conn.msgtype, msgdef=conn.msgdef.data, rihs01=conn.digest,
            serialization_format=conn.ext.serialization_format,
            offered_qos_profiles=conn.ext.offered_qos_profiles)

    def copy_connections(self, connections: Iterable[Any], source: Path) -> dict[int, Any]:
        """:meth:`copy_connection` of each, in order, by the source connection's id; a failure is
        a BagProcessingError naming the ``source`` bag and the connection."""
        out = {}
        for c in connections:
            try:
                out[c.id] = self.copy_connection(c)
            except Exception as exc:
                raise BagProcessingError(f"bag {str(source)!r}: cannot copy connection "
                                         f"{c.topic} ({c.msgtype}): {exc}") from None
        return out

    def write(self, conn: Any, t_ns: int, data: bytes | memoryview) -> None:
        """One serialised message at bag time ``t_ns``."""
        self.writer.write(conn, t_ns, data)
        self.messages += 1

    def write_message(self, conn: Any, t_ns: int, msg: Any) -> None:
        """One message object of the typestore, serialised as the connection's type."""
        self.write(conn, t_ns, serialize(self.typestore, msg, conn.msgtype))


@contextmanager
def open_writer(path: Path | str, storage: str = "mcap", ts: Any = None) -> Iterator[BagWriter]:
    """A new bag at ``path`` (which must not exist; see :func:`atomic_output`) in ``storage``
    (``"mcap"``, else sqlite3), closed (metadata written) when the block ends. ``ts``: the
    typestore for new connections (None: :func:`typestore`)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    try:
        writer_cm = Writer(path, version=BAG_VERSION, storage_plugin=plugin)
    except Exception as exc:
        raise BagProcessingError(f"cannot create the output bag {str(path)!r}: {exc}") from None
    with writer_cm as writer:
        yield BagWriter(writer, typestore() if ts is None else ts)
