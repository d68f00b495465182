"""A rosbag2 with a ground-truth label topic as an evaluation dataset (``eval --data BAG``).

The bag needs an image topic (sensor_msgs/Image or CompressedImage, chosen as in
:func:`crop_weed_seg.bags.processing.select_topics`) and a ground-truth topic whose name ends in
``labels_truth`` (CompressedImage PNG mono8 or Image mono8). Frames and labels are paired by
header stamp; frames without a label are left out (counted in :attr:`BagDataset.unmatched`).

Opening indexes the bag once (bag timestamp and header stamp of each image and label message,
read from the CDR header without deserialising); ``dataset[i]`` reads that one image and label
back from the bag, so memory stays small for long bags. ``dataset[i]`` returns
``(rgb (H, W, 3) uint8, labels (H, W) uint8)`` like :class:`~crop_weed_seg.data.datasets.
SegmentationDataset`; labels must hold only 0, 1, 2 or 255 and match the image's size.
Problems are one :class:`~crop_weed_seg.errors.DatasetError` naming the bag, topic and stamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crop_weed_seg.bags.processing import (
    BagProcessingError,
    decode_image,
    decode_truth,
    header_stamp_ns,
    is_bag_path,
    iter_messages,
    open_reader,
    select_topics,
    stamp_stem,
    to_rgb8,
    typestore,
)
from crop_weed_seg.classes import IGNORE_INDEX
from crop_weed_seg.errors import DatasetError, InvalidFrameError

_ALLOWED = np.array([0, 1, 2, IGNORE_INDEX])


@dataclass(frozen=True)
class BagSample:
    """One frame: ``image_path`` / ``label_path`` are ``BAG#TOPIC@STEM`` descriptions (for
    messages), ``*_time`` the bag timestamps to read the messages back."""

    stem: str
    image_path: str
    label_path: str
    image_time: int
    label_time: int
    stamp_ns: int


class BagDataset:
    """Image/ground-truth pairs of a bag, sorted by stamp (the dataset interface of eval)."""

    layout = "bag"
    split = None

    def __init__(self, root: Path | str, image_topic: str | None = None,
                 truth_topic: str | None = None) -> None:
        self.root = Path(root)
        try:
            reader = open_reader(self.root)
        except BagProcessingError as exc:
            raise DatasetError(str(exc)) from None
        self._reader = reader
        try:
            topics = select_topics(reader.connections, self.root, image_topic, None, None,
                                   truth_topic, find_truth=True)
        except BagProcessingError as exc:
            raise DatasetError(str(exc)) from None
        if topics.truth is None:
            raise DatasetError(f"bag {str(self.root)!r} has no ground-truth topic (a sensor_msgs "
                               "Image or CompressedImage topic whose name ends in labels_truth)")
        self.topics = topics
        self._conns = {c.topic: c for c in reader.connections
                       if c.topic in (topics.image, topics.truth)}
        images: dict[int, int] = {}
        labels: dict[int, int] = {}
        wanted = [c for c in reader.connections if c.topic in (topics.image, topics.truth)]
        try:
            for conn, t_ns, raw in iter_messages(reader, self.root, wanted):
                stamp = header_stamp_ns(raw)
                if stamp is None:
                    continue
                (images if conn.topic == topics.image else labels).setdefault(stamp, t_ns)
        except BagProcessingError as exc:
            raise DatasetError(str(exc)) from None
        both = sorted(set(images) & set(labels))
        self.unmatched = len(images) - len(both)
        desc = f"{self.root}#{{}}@{{}}"
        self.samples = [BagSample(stamp_stem(s), desc.format(topics.image, stamp_stem(s)),
                                  desc.format(topics.truth, stamp_stem(s)), images[s],
                                  labels[s], s) for s in both]
        if not self.samples:
            raise DatasetError(f"bag {str(self.root)!r}: no frame of {topics.image} has a "
                               f"ground-truth label on {topics.truth} with the same header stamp")
        self._ts = typestore()

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (f"BagDataset(root={str(self.root)!r}, image={self.topics.image!r}, "
                f"truth={self.topics.truth!r}, samples={len(self.samples)})")

    def close(self) -> None:
        self._reader.close()

    def _read(self, topic: str, t_ns: int, stamp: int) -> Any:
        conn = [c for c in self._reader.connections if c.topic == topic]
        for c, _t, raw in self._reader.messages(connections=conn, start=t_ns, stop=t_ns + 1):
            if header_stamp_ns(raw) == stamp:
                try:
                    return self._ts.deserialize_cdr(raw, c.msgtype), c.msgtype
                except Exception as exc:
                    raise DatasetError(f"{self.root}#{topic}@{stamp_stem(stamp)}: message cannot "
                                       f"be deserialised ({type(exc).__name__}: {exc})") from None
        raise DatasetError(f"{self.root}#{topic}@{stamp_stem(stamp)}: message not found again")

    def load_label(self, index: int) -> np.ndarray:
        s = self.samples[index]
        msg, msgtype = self._read(self.topics.truth or "", s.label_time, s.stamp_ns)
        try:
            labels = decode_truth(msg, msgtype)
        except InvalidFrameError as exc:
            raise DatasetError(f"{s.label_path}: {exc}") from None
        bad = np.setdiff1d(np.unique(labels), _ALLOWED)
        if bad.size:
            raise DatasetError(f"{s.label_path}: label values {bad.tolist()[:20]} are outside "
                               "the class set {0, 1, 2, 255}")
        return labels

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.samples[index]
        msg, msgtype = self._read(self.topics.image, s.image_time, s.stamp_ns)
        try:
            rgb = to_rgb8(*decode_image(msg, msgtype))
        except InvalidFrameError as exc:
            raise DatasetError(f"{s.image_path}: {exc}") from None
        labels = self.load_label(index)
        if labels.shape != rgb.shape[:2]:
            raise DatasetError(f"{s.label_path}: label is {labels.shape[1]}x{labels.shape[0]} "
                               f"(WxH) but its image is {rgb.shape[1]}x{rgb.shape[0]}")
        return rgb, labels

    def validate(self) -> None:
        for i in range(len(self)):
            self[i]


def open_bag_dataset(root: Path | str, image_topic: str | None = None,
                     truth_topic: str | None = None) -> BagDataset:
    """Open a bag as an evaluation dataset; DatasetError when it is not usable."""
    return BagDataset(root, image_topic, truth_topic)


__all__ = ["BagDataset", "BagSample", "is_bag_path", "open_bag_dataset"]
