"""A simulated drive written as a rosbag2 (mcap) with its ground truth."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from crop_weed_seg.bags.rosbag_io import (
    CAMERA_INFO_TYPE,
    COMPRESSED_TYPE,
    ODOMETRY_TYPE,
    BagWriter,
    atomic_output,
    camera_info,
    header_at,
    jpeg_image,
    open_writer,
    png_labels,
)
from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.drive import Drive, Odometry, SimFrame, drive_frames, plan_drive
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import Boom


def write_bag(path: str | Path, fld: SimField, camera: SimCamera, boom: Boom, *,
              speed_mps: float, frame_rate_hz: float, seed: int = 0,
              odom_rate_hz: float = 50.0, jpeg_quality: int = 90,
              start_ns: int = 1_780_308_000_000_000_000, max_frames: int | None = None,
              frame_id: str = "camera_optical_frame") -> dict[str, Any]:
    """A rosbag2 (mcap) of a drive: ``/camera/image/compressed`` (JPEG), ``/camera/camera_info``,
    ``/camera/labels_truth`` (PNG mono8), ``/odom`` (nav_msgs/Odometry at ``odom_rate_hz``,
    frame ``odom`` → ``base_link``, pose.position.x = travel, twist.linear.x = speed), plus
    ``ground_truth.json`` in the bag folder (plants in field metres, and where base_link starts).
    Stamps: ``start_ns`` + sim time; header stamp = receive time. Returns the JSON written.
    The folder appears at ``path`` only once complete; an existing ``path`` is a BagError."""
    path = Path(path)
    drive = plan_drive(fld, camera, boom, speed_mps, frame_rate_hz)
    if max_frames is not None and max_frames < drive.frame_count:
        drive = replace(drive, duration_s=(max_frames - 1) / frame_rate_hz)
    with atomic_output(path, hint="remove it or choose another path") as bag:
        with open_writer(bag, "mcap") as writer:
            counts = _DriveWriter(writer, camera, speed_mps, jpeg_quality, frame_id).write(
                drive_frames(fld, camera, drive, seed), drive.duration_s, odom_rate_hz,
                start_ns)
        truth = _ground_truth(fld, camera, boom, drive, counts, start_ns, speed_mps,
                              frame_rate_hz)
        (bag / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth


class _DriveWriter:
    """The messages of a drive: odometry at its own rate, and per frame the image, its
    camera_info and its ground-truth labels, all with the frame's stamp."""

    def __init__(self, writer: BagWriter, camera: SimCamera, speed_mps: float,
                 jpeg_quality: int, frame_id: str) -> None:
        self.writer = writer
        self.ts = writer.typestore
        self.speed_mps = speed_mps
        self.odo = Odometry(speed_mps)
        self.jpeg_quality = jpeg_quality
        self.frame_id = frame_id
        self.intr = camera.intrinsics
        intr = self.intr
        self.k = np.array([intr.fx, 0, intr.cx, 0, intr.fy, intr.cy, 0, 0, 1], np.float64)
        self.p = np.array([intr.fx, 0, intr.cx, 0, 0, intr.fy, intr.cy, 0, 0, 0, 1, 0],
                          np.float64)
        self.d = np.asarray(intr.distortion or (0.0,) * 5, np.float64)
        self.c_img = writer.add_connection("/camera/image/compressed", COMPRESSED_TYPE)
        self.c_info = writer.add_connection("/camera/camera_info", CAMERA_INFO_TYPE)
        self.c_lab = writer.add_connection("/camera/labels_truth", COMPRESSED_TYPE)
        self.c_odom = writer.add_connection("/odom", ODOMETRY_TYPE)

    def write(self, frames: Any, duration_s: float, odom_rate_hz: float,
              start_ns: int) -> dict[str, int]:
        """Odometry and frames merged by time; {"images": n, "odom": n}."""
        counts = {"images": 0, "odom": 0}
        n_odom = int(math.floor(duration_s * odom_rate_hz + 1e-9)) + 1
        odom_times = [i / odom_rate_hz for i in range(n_odom)]
        next_frame: SimFrame | None = next(frames, None)
        oi = 0
        while next_frame is not None or oi < n_odom:
            # odometry first when stamps tie, so a consumer has the speed when the image comes
            if oi < n_odom and (next_frame is None or odom_times[oi] <= next_frame.stamp_s + 1e-12):
                t = odom_times[oi]
                self.odometry(start_ns + int(round(t * 1e9)), t)
                counts["odom"] += 1
                oi += 1
                continue
            fr = next_frame
            assert fr is not None  # the odometry branch above takes every step without a frame
            self.frame(start_ns + int(round(fr.stamp_s * 1e9)), fr)
            counts["images"] += 1
            next_frame = next(frames, None)
        return counts

    def odometry(self, t_ns: int, t: float) -> None:
        T = self.ts.types
        Vec3 = T["geometry_msgs/msg/Vector3"]
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=float(self.odo.travel(t)), y=0.0, z=0.0),
            orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
        twist = T["geometry_msgs/msg/Twist"](linear=Vec3(x=float(self.speed_mps), y=0.0, z=0.0),
                                             angular=Vec3(x=0.0, y=0.0, z=0.0))
        msg = T[ODOMETRY_TYPE](
            header=header_at(self.ts, t_ns, "odom"), child_frame_id="base_link",
            pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose,
                                                           covariance=np.zeros(36, np.float64)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist,
                                                             covariance=np.zeros(36, np.float64)))
        self.writer.write_message(self.c_odom, t_ns, msg)

    def frame(self, t_ns: int, fr: SimFrame) -> None:
        hd = header_at(self.ts, t_ns, self.frame_id)
        image = jpeg_image(self.ts, hd, fr.rgb, self.jpeg_quality)
        labels = png_labels(self.ts, hd, fr.labels)
        info = camera_info(self.ts, hd, self.intr.width, self.intr.height, self.k, self.d, self.p)
        self.writer.write_message(self.c_img, t_ns, image)
        self.writer.write_message(self.c_info, t_ns, info)
        self.writer.write_message(self.c_lab, t_ns, labels)


def _ground_truth(fld: SimField, camera: SimCamera, boom: Boom, drive: Drive,
                  counts: dict[str, int], start_ns: int, speed_mps: float,
                  frame_rate_hz: float) -> dict[str, Any]:
    intr = camera.intrinsics
    m = camera.projector.mount
    truth = fld.ground_truth_json()
    truth.update({
        "drive": {"start_ns": int(start_ns), "base_link_start_x_m": drive.start_x,
                  "speed_mps": speed_mps, "frame_rate_hz": frame_rate_hz,
                  "duration_s": drive.duration_s, "frames": counts["images"],
                  "odom_messages": counts["odom"], "scored_span_m": list(drive.scored_span),
                  "note": "base_link is at field x = base_link_start_x_m + odom "
                          "pose.position.x, field y = base_link y"},
        "camera": {"width": intr.width, "height": intr.height, "fx": intr.fx, "fy": intr.fy,
                   "cx": intr.cx, "cy": intr.cy, "x": m.x, "y": m.y, "height_m": m.height,
                   "pitch_deg": m.pitch_deg, "roll_deg": m.roll_deg, "yaw_deg": m.yaw_deg,
                   "exposure_s": camera.exposure_s},
        "boom": {"nozzle_count": boom.nozzle_count, "nozzle_spacing_m": boom.nozzle_spacing_m,
                 "center_y": boom.center_y, "nozzle_x": boom.nozzle_x},
    })
    return truth
