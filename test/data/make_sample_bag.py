"""Write ``test/data/sample_bag/``: a small mcap rosbag2 of a simulated drive along crop rows.

Run once, and again only when the drive renderer changes (and say so in the commit):
    rm -rf test/data/sample_bag && .venv/bin/python test/data/make_sample_bag.py

Content (deterministic: a fixed seed and fixed stamps; the same numpy/OpenCV give the same bytes):
- 40 frames at 10 Hz, 640x480, from ``render_drive(PRESETS["heldout"], seed=2026, step_px=60)``:
  1 mm/px on the ground, 6 cm of travel per frame, i.e. 0.6 m/s, rows along the travel direction;
- ``/camera/image/compressed`` sensor_msgs/msg/CompressedImage, format
  ``"rgb8; jpeg compressed bgr8"`` (what image_transport writes), JPEG quality 90;
- ``/camera/camera_info`` sensor_msgs/msg/CameraInfo, 640x480 pinhole, fx = fy = 800 px
  (camera 0.8 m above the ground at 1 mm/px, 43.6° horizontal FOV), plumb_bob, zero distortion;
- ``/camera/labels_truth`` sensor_msgs/msg/CompressedImage, format ``"mono8; png compressed
  mono8"``: the ground-truth class ids (0 soil, 1 crop, 2 weed);
- every header: frame_id ``camera_optical_frame``, stamp = the bag receive timestamp, from
  2026-06-01 10:00:00 UTC in steps of 100 ms; the three messages of a frame share the stamp.

It also writes a contact sheet of 8 frames with their label overlays to /tmp/sample_bag_sheet.png.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from crop_weed_seg.perception.visualize import contact_sheet, overlay
from crop_weed_seg.synthetic import PRESETS
from crop_weed_seg.synthetic.drive import render_drive_strip

HERE = Path(__file__).resolve().parent
OUT = HERE / "sample_bag"
SHEET = Path("/tmp/sample_bag_sheet.png")

SEED = 2026
FRAMES = 40
RATE_HZ = 10.0
HEIGHT, WIDTH = 480, 640
STEP_PX = 60
GSD_MM = 1.0
CAMERA_HEIGHT_M = 0.8
JPEG_QUALITY = 90
FRAME_ID = "camera_optical_frame"
START_NS = int(datetime(2026, 6, 1, 10, 0, 0, tzinfo=timezone.utc).timestamp()) * 1_000_000_000

IMAGE_TOPIC = "/camera/image/compressed"
INFO_TOPIC = "/camera/camera_info"
LABELS_TOPIC = "/camera/labels_truth"


def main() -> int:
    if OUT.exists():
        print(f"{OUT} exists; remove it first to regenerate", file=sys.stderr)
        return 1
    strip = render_drive_strip(PRESETS["heldout"], SEED, FRAMES, HEIGHT, WIDTH, STEP_PX,
                               gsd_mm=GSD_MM)
    ts = get_typestore(Stores.ROS2_HUMBLE)
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    CompressedImage = ts.types["sensor_msgs/msg/CompressedImage"]
    CameraInfo = ts.types["sensor_msgs/msg/CameraInfo"]
    RegionOfInterest = ts.types["sensor_msgs/msg/RegionOfInterest"]

    f = CAMERA_HEIGHT_M / (GSD_MM / 1000.0)  # focal length [px] giving GSD at that height
    cx, cy = (WIDTH - 1) / 2.0, (HEIGHT - 1) / 2.0
    period_ns = int(round(1e9 / RATE_HZ))
    tiles = []
    with Writer(OUT, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        c_img = writer.add_connection(IMAGE_TOPIC, CompressedImage.__msgtype__, typestore=ts)
        c_info = writer.add_connection(INFO_TOPIC, CameraInfo.__msgtype__, typestore=ts)
        c_lab = writer.add_connection(LABELS_TOPIC, CompressedImage.__msgtype__, typestore=ts)
        for k in range(FRAMES):
            rgb, labels = strip.frame(k)
            stamp_ns = START_NS + k * period_ns
            sec, nsec = divmod(stamp_ns, 1_000_000_000)
            header = Header(stamp=Time(sec=sec, nanosec=nsec), frame_id=FRAME_ID)
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            assert ok
            ok, png = cv2.imencode(".png", labels)
            assert ok
            img_msg = CompressedImage(header=header, format="rgb8; jpeg compressed bgr8",
                                      data=np.asarray(jpg, np.uint8).ravel())
            lab_msg = CompressedImage(header=header, format="mono8; png compressed mono8",
                                      data=np.asarray(png, np.uint8).ravel())
            info_msg = CameraInfo(
                header=header, height=HEIGHT, width=WIDTH, distortion_model="plumb_bob",
                d=np.zeros(5, np.float64),
                k=np.array([f, 0, cx, 0, f, cy, 0, 0, 1], np.float64),
                r=np.array([1, 0, 0, 0, 1, 0, 0, 0, 1], np.float64),
                p=np.array([f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0], np.float64),
                binning_x=0, binning_y=0,
                roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0,
                                     do_rectify=False))
            writer.write(c_img, stamp_ns, ts.serialize_cdr(img_msg, CompressedImage.__msgtype__))
            writer.write(c_info, stamp_ns, ts.serialize_cdr(info_msg, CameraInfo.__msgtype__))
            writer.write(c_lab, stamp_ns, ts.serialize_cdr(lab_msg, CompressedImage.__msgtype__))
            if k % 5 == 0:
                decoded = cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                tile = overlay(decoded, labels)
                cv2.putText(tile, f"frame {k}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0,
                            (255, 255, 255), 2)
                tiles.append(cv2.resize(tile, (WIDTH // 2, HEIGHT // 2),
                                        interpolation=cv2.INTER_AREA))
    sheet = contact_sheet(tiles, columns=4)
    cv2.imwrite(str(SHEET), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB, {FRAMES} frames, "
          f"{strip.speed_m_s(RATE_HZ):.2f} m/s) and {SHEET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
