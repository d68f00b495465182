"""Fast DDS shared-memory segments that dead processes left in ``/dev/shm`` (docs/RELIABILITY.md).

Every Fast DDS participant with the shared-memory transport owns a segment
``/dev/shm/fastdds_<id>`` (about 34 MB with ``config/fastdds_large_images.xml``, 0.5 MB with
Fast DDS's default) and holds an exclusive ``flock`` on ``fastdds_<id>_el`` while it lives. A
clean exit removes both (our nodes exit cleanly on SIGINT/SIGTERM at any moment); a process
killed with SIGKILL, or one that crashes, leaves them behind, and nothing removes them: each
killed node with the large-images profile leaves ~34 MB of RAM-backed ``/dev/shm``. (Fast DDS
2.x names them ``fastrtps_*``; both are handled.)

:func:`zombie_segments` lists segments whose lock nobody holds and that are older than
``min_age_s`` (a participant takes its lock within milliseconds of creating the file);
:func:`remove_zombie_segments` deletes them. The port files (``fastdds_port<N>``) are shared
by all participants and managed by Fast DDS itself: left alone. Run it when a killed node may
have left segments, e.g. before starting the nodes (``ExecStartPre`` of a systemd unit)::

    python -m crop_weed_seg.ros.shm_cleanup            # list
    python -m crop_weed_seg.ros.shm_cleanup --remove   # delete
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SHM = Path("/dev/shm")
_SEGMENT = re.compile(r"^(fastdds|fastrtps)_(?!port)[0-9a-f]+$")


@dataclass(frozen=True)
class Segment:
    path: Path
    lock: Path
    size: int


def _lock_is_free(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False            # held: its participant is alive
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def segments(folder: Path = SHM) -> list[Segment]:
    """Every Fast DDS participant segment in ``folder`` (alive or not)."""
    out: list[Segment] = []
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return out
    for name in names:
        if _SEGMENT.match(name):
            path = folder / name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            out.append(Segment(path, folder / f"{name}_el", size))
    return out


def zombie_segments(folder: Path = SHM, min_age_s: float = 30.0) -> list[Segment]:
    """Segments of dead participants: lock file present and free, both older than
    ``min_age_s``."""
    now = time.time()
    out = []
    for seg in segments(folder):
        try:
            old = now - max(seg.path.stat().st_ctime, seg.lock.stat().st_ctime) >= min_age_s
        except OSError:
            continue            # no lock file (not ours to judge) or gone meanwhile
        if old and _lock_is_free(seg.lock):
            out.append(seg)
    return out


def remove_zombie_segments(folder: Path = SHM, min_age_s: float = 30.0) -> tuple[int, int]:
    """Delete the segments of dead participants; (segments removed, bytes freed)."""
    count = freed = 0
    for seg in zombie_segments(folder, min_age_s):
        try:
            seg.path.unlink()
            seg.lock.unlink(missing_ok=True)
        except OSError:
            continue
        count += 1
        freed += seg.size
    return count, freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--remove", action="store_true", help="delete them (default: list)")
    parser.add_argument("--min-age", type=float, default=30.0,
                        help="only segments at least this old [s] (default 30)")
    parser.add_argument("--folder", type=Path, default=SHM)
    args = parser.parse_args(argv)
    zombies = zombie_segments(args.folder, args.min_age)
    total = sum(s.size for s in zombies)
    for seg in zombies:
        print(f"{seg.path}  {seg.size / 1e6:.1f} MB  (no live owner)")
    if args.remove:
        count, freed = remove_zombie_segments(args.folder, args.min_age)
        print(f"removed {count} segments, {freed / 1e6:.1f} MB")
    else:
        print(f"{len(zombies)} segments of dead processes, {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
