"""A simulated drive written as a rosbag2 (mcap) with its ground truth."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.drive import Odometry, drive_frames, plan_drive
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
    Stamps: ``start_ns`` + sim time; header stamp = receive time. Returns the JSON written."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    path = Path(path)
    drive = plan_drive(fld, camera, boom, speed_mps, frame_rate_hz)
    if max_frames is not None and max_frames < drive.frame_count:
        drive = replace(drive, duration_s=(max_frames - 1) / frame_rate_hz)
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    CompressedImage = T["sensor_msgs/msg/CompressedImage"]
    CameraInfo = T["sensor_msgs/msg/CameraInfo"]
    ROI, Odom = T["sensor_msgs/msg/RegionOfInterest"], T["nav_msgs/msg/Odometry"]
    Pose, PoseCov = T["geometry_msgs/msg/Pose"], T["geometry_msgs/msg/PoseWithCovariance"]
    Twist, TwistCov = T["geometry_msgs/msg/Twist"], T["geometry_msgs/msg/TwistWithCovariance"]
    Point, Quat, Vec3 = (T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"],
                         T["geometry_msgs/msg/Vector3"])
    intr = camera.intrinsics
    k = np.array([intr.fx, 0, intr.cx, 0, intr.fy, intr.cy, 0, 0, 1], np.float64)
    p = np.array([intr.fx, 0, intr.cx, 0, 0, intr.fy, intr.cy, 0, 0, 0, 1, 0], np.float64)
    d = np.asarray(intr.distortion or (0.0,) * 5, np.float64)
    odo = Odometry(speed_mps)

    def header(t_ns: int, fid: str):
        sec, nsec = divmod(t_ns, 1_000_000_000)
        return Header(stamp=Time(sec=sec, nanosec=nsec), frame_id=fid)

    counts = {"images": 0, "odom": 0}
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        c_img = writer.add_connection("/camera/image/compressed", CompressedImage.__msgtype__,
                                      typestore=ts)
        c_info = writer.add_connection("/camera/camera_info", CameraInfo.__msgtype__, typestore=ts)
        c_lab = writer.add_connection("/camera/labels_truth", CompressedImage.__msgtype__,
                                      typestore=ts)
        c_odom = writer.add_connection("/odom", Odom.__msgtype__, typestore=ts)
        n_odom = int(math.floor(drive.duration_s * odom_rate_hz + 1e-9)) + 1
        odom_times = [i / odom_rate_hz for i in range(n_odom)]
        frames = drive_frames(fld, camera, drive, seed)
        next_frame = next(frames, None)
        oi = 0
        while next_frame is not None or oi < n_odom:
            # odometry first when stamps tie, so a consumer has the speed when the image comes
            if oi < n_odom and (next_frame is None or odom_times[oi] <= next_frame.stamp_s + 1e-12):
                t = odom_times[oi]
                t_ns = start_ns + int(round(t * 1e9))
                msg = Odom(header=header(t_ns, "odom"), child_frame_id="base_link",
                           pose=PoseCov(pose=Pose(position=Point(x=float(odo.travel(t)), y=0.0,
                                                                 z=0.0),
                                                  orientation=Quat(x=0.0, y=0.0, z=0.0, w=1.0)),
                                        covariance=np.zeros(36, np.float64)),
                           twist=TwistCov(twist=Twist(linear=Vec3(x=float(speed_mps), y=0.0,
                                                                  z=0.0),
                                                      angular=Vec3(x=0.0, y=0.0, z=0.0)),
                                          covariance=np.zeros(36, np.float64)))
                writer.write(c_odom, t_ns, ts.serialize_cdr(msg, Odom.__msgtype__))
                counts["odom"] += 1
                oi += 1
                continue
            fr = next_frame
            assert fr is not None  # the odometry branch above takes every step without a frame
            t_ns = start_ns + int(round(fr.stamp_s * 1e9))
            hd = header(t_ns, frame_id)
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(fr.rgb, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            ok2, png = cv2.imencode(".png", fr.labels)
            if not (ok and ok2):
                raise RuntimeError("image encoding failed")
            writer.write(c_img, t_ns, ts.serialize_cdr(
                CompressedImage(header=hd, format="rgb8; jpeg compressed bgr8",
                                data=np.asarray(jpg, np.uint8).ravel()),
                CompressedImage.__msgtype__))
            info = CameraInfo(header=hd, height=intr.height, width=intr.width,
                              distortion_model="plumb_bob", d=d, k=k,
                              r=np.eye(3, dtype=np.float64).ravel(), p=p, binning_x=0,
                              binning_y=0, roi=ROI(x_offset=0, y_offset=0, height=0, width=0,
                                                   do_rectify=False))
            writer.write(c_info, t_ns, ts.serialize_cdr(info, CameraInfo.__msgtype__))
            writer.write(c_lab, t_ns, ts.serialize_cdr(
                CompressedImage(header=hd, format="mono8; png compressed mono8",
                                data=np.asarray(png, np.uint8).ravel()),
                CompressedImage.__msgtype__))
            counts["images"] += 1
            next_frame = next(frames, None)
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
                   "pitch_deg": m.pitch_deg, "exposure_s": camera.exposure_s},
        "boom": {"nozzle_count": boom.nozzle_count, "nozzle_spacing_m": boom.nozzle_spacing_m,
                 "center_y": boom.center_y, "nozzle_x": boom.nozzle_x},
    })
    (path / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth
