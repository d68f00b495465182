"""Publish a burst of large best-effort ``sensor_msgs/Image`` frames (test helper, own process).

Used by ``test_large_images_dds.py`` to check that large images cross a process boundary over
Fast DDS (see ``config/fastdds_large_images.xml``)::

    python test/support/image_flood.py --width 1280 --height 720 --count 100 --rate 25 --topic flood

Protocol on stdout / stdin, so that no frame is sent before both sides have matched:

1. waits (bounded by ``--match-timeout``) until the publisher has at least one subscription,
   then prints ``MATCHED``;
2. waits for one line on stdin (the subscriber says it has matched the publisher too);
3. publishes ``--count`` frames at ``--rate`` Hz with ``qos_profile_sensor_data`` (best effort,
   depth 1), frame ``i`` carrying ``header.frame_id = str(i)`` and ``i`` as little-endian
   uint32 in its first 4 data bytes, then prints ``SENT <count> ...``;
4. keeps the publisher alive until a second line or EOF on stdin (frames still in flight are
   not cut off by shutting down), then exits 0.

Exit status 2 when no subscription matched in time.
"""

from __future__ import annotations

import argparse
import array
import os
import struct
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--encoding", default="bgr8", choices=["bgr8", "mono8"])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rate", type=float, default=25.0, help="frames per second")
    parser.add_argument("--topic", default="image_flood")
    parser.add_argument("--match-timeout", type=float, default=30.0, help="seconds")
    args = parser.parse_args(argv)

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    channels = 3 if args.encoding == "bgr8" else 1
    step = args.width * channels
    # A non-constant pattern, built once; only the 4-byte frame counter changes per frame.
    payload = array.array("B", (os.urandom(251) * (step * args.height // 251 + 1))
                          [: step * args.height])

    rclpy.init()
    try:
        node = rclpy.create_node(f"image_flood_{os.getpid()}")
        pub = node.create_publisher(Image, args.topic, qos_profile_sensor_data)
        deadline = time.monotonic() + args.match_timeout
        while pub.get_subscription_count() < 1:  # discovery runs in DDS threads: just poll
            if time.monotonic() > deadline:
                print("NO_MATCH", flush=True)
                return 2
            time.sleep(0.02)
        print("MATCHED", flush=True)
        if not sys.stdin.readline():  # the test closed stdin: it gave up
            return 3

        msg = Image()
        msg.height, msg.width, msg.step = args.height, args.width, step
        msg.encoding = args.encoding
        msg.is_bigendian = 0
        period = 1.0 / args.rate
        start = time.monotonic()
        for i in range(args.count):
            payload[0:4] = array.array("B", struct.pack("<I", i))
            msg.data = payload
            msg.header.frame_id = str(i)
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            # Pace to the rate (a sender's schedule, not synchronisation).
            delay = start + (i + 1) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        print(f"SENT {args.count} in {time.monotonic() - start:.2f} s", flush=True)
        sys.stdin.readline()
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
