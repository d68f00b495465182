"""Weed tracks in a ground-fixed frame, so a weed seen in several overlapping frames keeps one
``track_id`` (no ROS).

The robot is assumed to drive straight along x; ``travel_m`` is how far it has driven (from
odometry) at the image's stamp, so a target at ``x`` in ``target_frame`` lies at ``travel_m + x``
along the field. A new target joins the nearest track within ``gate_m`` (greedy, closest pairs
first, one target per track per frame); otherwise it starts a track. Tracks that fell behind
the camera by more than ``forget_behind_m`` or were not seen for ``max_missed`` frames are
dropped, and at most ``max_tracks`` are kept, so memory is bounded.
"""

from __future__ import annotations

import numpy as np

from crop_weed_seg.errors import ConfigError


class TargetTracker:
    def __init__(self, gate_m: float = 0.03, max_missed: int = 30,
                 forget_behind_m: float = 2.0, max_tracks: int = 5000, first_id: int = 1) -> None:
        if not gate_m > 0 or max_missed < 1 or max_tracks < 1:
            raise ConfigError("gate_m must be > 0, max_missed and max_tracks >= 1")
        self.gate_m = gate_m
        self.max_missed = max_missed
        self.forget_behind_m = forget_behind_m
        self.max_tracks = max_tracks
        self._pos = np.empty((0, 2))            # ground-fixed (along, across) per track
        self._ids = np.empty(0, np.uint32)
        self._class = np.empty(0, np.uint16)
        self._missed = np.empty(0, np.int64)
        self._next_id = int(first_id - 1) % 0xFFFFFFFF + 1

    @property
    def next_id(self) -> int:
        return self._next_id

    def clear(self) -> None:
        """Forget every track (time jumped); ids keep counting up, so an id is not reused for
        another weed while a consumer may still hold the old one."""
        self._pos = np.empty((0, 2))
        self._ids = np.empty(0, np.uint32)
        self._class = np.empty(0, np.uint16)
        self._missed = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def _new_ids(self, n: int) -> np.ndarray:
        ids = (self._next_id - 1 + np.arange(n, dtype=np.uint64)) % 0xFFFFFFFF + 1
        self._next_id = int(ids[-1]) % 0xFFFFFFFF + 1 if n else self._next_id
        return ids.astype(np.uint32)

    def update(self, records: np.ndarray, travel_m: float) -> np.ndarray:
        """``records`` with ``track_id`` filled (a copy). Targets without ground coordinates
        (NaN x) keep track_id 0."""
        out = records.copy()
        fixed = np.column_stack((travel_m + out["x"].astype(np.float64),
                                 out["y"].astype(np.float64)))
        valid = np.isfinite(fixed).all(axis=1)
        assigned = np.zeros(len(out), bool)
        seen = np.zeros(len(self._ids), bool)
        if len(self._ids) and valid.any():
            cand = np.flatnonzero(valid)
            d = np.linalg.norm(fixed[cand, None, :] - self._pos[None, :, :], axis=2)
            same_class = out["class_id"][cand, None] == self._class[None, :]
            d = np.where(same_class & (d <= self.gate_m), d, np.inf)
            order = np.argsort(d, axis=None)
            for flat in order:
                i, j = divmod(int(flat), d.shape[1])
                if not np.isfinite(d[i, j]):
                    break
                if assigned[cand[i]] or seen[j]:
                    continue
                assigned[cand[i]] = True
                seen[j] = True
                out["track_id"][cand[i]] = self._ids[j]
                self._pos[j] = fixed[cand[i]]     # the newest view: the camera sees it closer
        new = np.flatnonzero(valid & ~assigned)
        self._missed = np.where(seen, 0, self._missed + 1)
        if len(new):
            ids = self._new_ids(len(new))
            out["track_id"][new] = ids
            self._pos = np.vstack((self._pos, fixed[new]))
            self._ids = np.concatenate((self._ids, ids))
            self._class = np.concatenate((self._class, out["class_id"][new]))
            self._missed = np.concatenate((self._missed, np.zeros(len(new), np.int64)))
        keep = (self._missed < self.max_missed) & \
               (self._pos[:, 0] >= travel_m - self.forget_behind_m)
        if keep.sum() > self.max_tracks:              # keep the most recently seen
            order = np.argsort(self._missed, kind="stable")[: self.max_tracks]
            keep = np.zeros(len(keep), bool)
            keep[order] = True
        self._pos, self._ids = self._pos[keep], self._ids[keep]
        self._class, self._missed = self._class[keep], self._missed[keep]
        return out
