"""Camera-to-ground geometry and the spray boom, without TF.

Frames. ``target_frame`` (default ``base_link``): x forward (direction of travel), y left, z up;
the ground is the plane z = 0. The camera's optical frame follows ROS (REP 103): x right, y down,
z along the optical axis.

The mount has 6 degrees of freedom relative to ``target_frame``: the optical centre (x, y,
height above the ground) and three angles, all 0 for the reference camera, which looks
straight down with the top of the image towards the front of the robot (+x) and image right
towards the robot's right (−y). Its orientation is that reference camera rotated

1. by ``roll`` about the ``target_frame`` x axis: positive tilts the optical axis to the left
   (towards +y, the image's left side; right-handed about +x as in REP 103),
2. then by ``pitch`` about the y axis: positive tilts the optical axis forward (towards +x, the
   top of the image; right-handed about −y, the sign the pitch always had),
3. then by ``yaw`` about the z axis (up): positive turns the camera counter-clockwise seen from
   above (right-handed about +z as in REP 103), so yaw 90° puts the top of the image to the
   left (+y) and image right forward (+x).

That is R = Rz(yaw) · Ry(−pitch) · Rx(roll) · R0 with R0 the reference camera's axes: fixed
axes in the order roll, pitch, yaw (URDF's rpy order), the same as yaw, pitch, roll about the
camera's moving axes. Roll and pitch are limited to ±80°, so the optical axis always points
below the horizon; yaw to ±180°. With roll = yaw = 0 the matrix is the pitch-only one, bit for
bit.

Intrinsics come from ``sensor_msgs/CameraInfo`` (K and a ``plumb_bob`` (5 coefficients),
``rational_polynomial`` (8) or ``equidistant`` (fisheye, 4) distortion; points are undistorted
with OpenCV) or from a horizontal field of view. A CameraInfo is checked completely before it is
used (:meth:`CameraIntrinsics.from_camera_info`): K a camera matrix with finite positive focal
lengths and the principal point inside the image, a known distortion model with its number of
coefficients (or none), and a trial undistortion that OpenCV accepts with finite results.
Extrinsics are parameters: the camera's optical centre (x, y) in ``target_frame``, its height
above the ground and its roll, pitch and yaw (above).

The boom is ``nozzle_count`` nozzles ``nozzle_spacing_m`` apart, centred at
``boom_center_y_m``, on a line ``nozzle_offset_m`` behind the camera's optical centre. Lane 0 is
the right-most nozzle (smallest y); a point belongs to the lane whose footprint (one spacing
wide) contains its y, and to lane −1 outside the boom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from crop_weed_seg.errors import ConfigError, InvalidFrameError

#: Distortion models of sensor_msgs/CameraInfo we can undo, with their number of coefficients.
DISTORTION_MODELS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
#: A CameraInfo whose distortion, undone and applied again, moves a pixel of the image corners,
#: edge midpoints or centre by more than this is refused.
ROUND_TRIP_PX = 2.0


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole camera with optional distortion: ``plumb_bob`` (k1, k2, p1, p2, k3),
    ``rational_polynomial`` (k1, k2, p1, p2, k3, k4, k5, k6) or ``equidistant`` (fisheye
    k1..k4); an empty ``distortion`` means none."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()
    model: str = "plumb_bob"

    def __post_init__(self) -> None:
        problems = []
        if self.width <= 0 or self.height <= 0:
            problems.append(f"size {self.width}x{self.height} is not positive")
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                problems.append(f"focal length {name}={value} is not a positive number")
        for name in ("cx", "cy"):
            if not math.isfinite(getattr(self, name)):
                problems.append(f"principal point {name} is not finite")
        if not all(math.isfinite(d) for d in self.distortion):
            problems.append("distortion holds NaN or Inf")
        expected = DISTORTION_MODELS.get(self.model)
        if expected is None:
            problems.append(f"distortion model {self.model!r} is not supported (one of "
                            f"{', '.join(DISTORTION_MODELS)})")
        elif len(self.distortion) not in (0, expected):
            problems.append(f"distortion model {self.model} has {expected} coefficients, "
                            f"D has {len(self.distortion)}")
        if not problems and self.has_distortion:
            problem = self._trial_undistortion()
            if problem:
                problems.append(problem)
        if problems:
            raise InvalidFrameError("camera intrinsics unusable: " + "; ".join(problems))

    @property
    def has_distortion(self) -> bool:
        return bool(self.distortion) and any(self.distortion)

    def _trial_undistortion(self) -> str | None:
        """Why OpenCV cannot undo this distortion over the image (None when it can): undo it
        for the corners, edge midpoints and centre, require finite results, and distort them
        again: a model that does not come back within :data:`ROUND_TRIP_PX` there (coefficients
        outside their valid range, a polynomial that folds over) would put targets elsewhere."""
        u = (0.0, (self.width - 1) / 2.0, self.width - 1.0)
        v = (0.0, (self.height - 1) / 2.0, self.height - 1.0)
        pts = np.array([(a, b) for a in u for b in v], np.float64)
        try:
            out = undistort_normalized(pts, self)
            if not np.isfinite(out).all():
                return "undistortion gives non-finite points"
            back = project_normalized(out, self)
        except cv2.error as exc:
            return f"OpenCV rejects the distortion: {str(exc).strip().splitlines()[-1]}"
        error = float(np.max(np.abs(back - pts))) if np.isfinite(back).all() else math.inf
        if not error <= ROUND_TRIP_PX:
            return (f"the distortion does not invert over the image (a pixel comes back "
                    f"{error:.3g} px away; at most {ROUND_TRIP_PX:g})")
        return None

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> "CameraIntrinsics":
        """Square pixels, principal point at the centre, no distortion."""
        if not 1.0 <= hfov_deg < 179.0:
            raise ConfigError(f"horizontal field of view {hfov_deg} deg must be in [1, 179)")
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @classmethod
    def from_camera_info(cls, k: list[float] | tuple[float, ...], d: list[float] | tuple,
                         width: int, height: int, model: str = "plumb_bob"
                         ) -> "CameraIntrinsics":
        """From CameraInfo's row-major K (9 values), D, width, height and distortion model,
        checked completely (module docstring); InvalidFrameError says what is wrong. An empty
        model is accepted only without distortion (an uncalibrated camera)."""
        if len(k) != 9:
            raise InvalidFrameError(f"camera_info K has {len(k)} values, expected 9")
        kv = [float(v) for v in k]
        dv = tuple(float(v) for v in d)
        problems = []
        if not all(math.isfinite(v) for v in kv):
            problems.append("K holds NaN or Inf")
        elif abs(kv[3]) > 0 or abs(kv[6]) > 0 or abs(kv[7]) > 0 or abs(kv[8] - 1.0) > 1e-9:
            problems.append(f"K is not a camera matrix (rows 2 and 3 must be [0, fy, cy] and "
                            f"[0, 0, 1], got {kv[3:]})")
        elif abs(kv[1]) > 1e-9 * max(abs(kv[0]), 1.0):
            problems.append(f"K has skew {kv[1]} (not supported)")
        elif not (0.0 <= kv[2] <= width and 0.0 <= kv[5] <= height):
            problems.append(f"principal point ({kv[2]}, {kv[5]}) lies outside the "
                            f"{width}x{height} image")
        if model == "":
            if any(dv):
                problems.append("D has coefficients but distortion_model is empty")
            model, dv = "plumb_bob", ()
        if problems:
            raise InvalidFrameError("camera_info unusable: " + "; ".join(problems))
        return cls(int(width), int(height), kv[0], kv[4], kv[2], kv[5], dv, str(model))

    def scaled_to(self, width: int, height: int) -> "CameraIntrinsics":
        """The same camera at another resolution (binning / resized image)."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(width, height, self.fx * sx, self.fy * sy,
                                (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                                self.distortion, self.model)

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)


def undistort_normalized(uv: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    """Undistorted normalised image coordinates (N, 2) of pixel positions (N, 2)."""
    pts = np.asarray(uv, np.float64).reshape(-1, 1, 2)
    if intr.has_distortion:
        dist = np.asarray(intr.distortion, np.float64)
        if intr.model == "equidistant":
            out = cv2.fisheye.undistortPoints(pts, intr.matrix, dist)
        else:
            out = cv2.undistortPoints(pts, intr.matrix, dist)
        return out.reshape(-1, 2)
    return np.column_stack(((pts[:, 0, 0] - intr.cx) / intr.fx,
                            (pts[:, 0, 1] - intr.cy) / intr.fy))


def project_normalized(xy: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    """Pixel positions (N, 2) of normalised image coordinates (N, 2), with distortion."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    pts = np.column_stack((xy, np.ones(len(xy)))).reshape(-1, 1, 3)
    rvec = tvec = np.zeros(3)
    if intr.model == "equidistant" and intr.has_distortion:
        proj, _ = cv2.fisheye.projectPoints(pts, rvec, tvec, intr.matrix,
                                            np.asarray(intr.distortion, np.float64))
    else:
        proj, _ = cv2.projectPoints(pts, rvec, tvec, intr.matrix,
                                    np.asarray(intr.distortion or (0.0,) * 5, np.float64))
    return proj.reshape(-1, 2)


@dataclass(frozen=True)
class CameraMount:
    """The optical centre in ``target_frame`` [m] and the orientation [deg]: roll, pitch and yaw
    of the straight-down reference camera (module docstring: axes, order, signs)."""

    x: float = 0.0
    y: float = 0.0
    height: float = 0.8
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    yaw_deg: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.height) and self.height > 0):
            raise ConfigError(f"camera height {self.height} m must be positive")
        if not -80.0 <= self.pitch_deg <= 80.0:
            raise ConfigError(f"camera pitch {self.pitch_deg} deg must be within ±80")
        if not -80.0 <= self.roll_deg <= 80.0:
            raise ConfigError(f"camera roll {self.roll_deg} deg must be within ±80")
        if not -180.0 <= self.yaw_deg <= 180.0:
            raise ConfigError(f"camera yaw {self.yaw_deg} deg must be within ±180")

    def rotation(self) -> np.ndarray:
        """3x3 matrix whose columns are the optical x, y, z axes in ``target_frame``:
        Rz(yaw) · Ry(−pitch) · Rx(roll) · R0. A roll or yaw of 0 is not applied at all, so the
        pitch-only matrix stays bit for bit what it always was (signed zeros included)."""
        t = math.radians(self.pitch_deg)
        x_opt = (0.0, -1.0, 0.0)
        y_opt = (-math.cos(t), 0.0, -math.sin(t))
        z_opt = (math.sin(t), 0.0, -math.cos(t))
        rot = np.array([x_opt, y_opt, z_opt], np.float64).T   # Ry(−pitch) · R0
        if self.roll_deg != 0.0:
            # Ry(−pitch) · Rx(roll) · R0 = Ry(−pitch) · R0 · (R0ᵀ Rx(roll) R0), and R0ᵀ Rx R0
            # turns about R0ᵀ x = −(optical y): a rotation by −roll about the optical y axis.
            a = math.radians(-self.roll_deg)
            about_optical_y = np.array([[math.cos(a), 0.0, math.sin(a)],
                                        [0.0, 1.0, 0.0],
                                        [-math.sin(a), 0.0, math.cos(a)]], np.float64)
            rot = rot @ about_optical_y
        if self.yaw_deg != 0.0:
            b = math.radians(self.yaw_deg)
            about_z = np.array([[math.cos(b), -math.sin(b), 0.0],
                                [math.sin(b), math.cos(b), 0.0],
                                [0.0, 0.0, 1.0]], np.float64)
            rot = about_z @ rot
        return rot

    @property
    def position(self) -> np.ndarray:
        return np.array([self.x, self.y, self.height], np.float64)


@dataclass(frozen=True)
class GroundProjector:
    """Pixels ↔ ground points for one camera on one mount."""

    intrinsics: CameraIntrinsics
    mount: CameraMount
    _rot: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rot", self.mount.rotation())

    def normalized(self, uv: np.ndarray) -> np.ndarray:
        """Undistorted normalised image coordinates (N, 2) of pixel positions (N, 2)."""
        return undistort_normalized(uv, self.intrinsics)

    def pixels_to_ground(self, uv: np.ndarray) -> np.ndarray:
        """Ground points (N, 2) = (x, y) in ``target_frame`` of pixel positions (N, 2);
        NaN where the ray does not meet the ground in front of the camera (above horizon)."""
        xn = self.normalized(uv)
        rays = np.column_stack((xn, np.ones(len(xn)))) @ self._rot.T   # (N, 3) in target_frame
        dz = rays[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(dz < -1e-9, self.mount.height / -dz, np.nan)
        pts = self.mount.position[None, :2] + t[:, None] * rays[:, :2]
        return pts

    def ground_to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Pixel positions (N, 2) of ground points (N, 2) (with distortion); NaN behind."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        world = np.column_stack((xy, np.zeros(len(xy)))) - self.mount.position[None, :]
        cam = world @ self._rot                  # coordinates in the optical frame
        z = cam[:, 2]
        out = np.full((len(xy), 2), np.nan)
        ahead = z > 1e-9
        if ahead.any():
            c = cam[ahead]
            out[ahead] = project_normalized(c[:, :2] / c[:, 2:3], self.intrinsics)
        return out

    def metres_per_pixel(self, uv: np.ndarray) -> np.ndarray:
        """Approximate ground size of one pixel at each position (N,): the square root of the
        area that the pixel's footprint covers."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        p = self.pixels_to_ground(uv)
        px = self.pixels_to_ground(uv + (1.0, 0.0))
        py = self.pixels_to_ground(uv + (0.0, 1.0))
        a, b = px - p, py - p
        return np.sqrt(np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))


@dataclass(frozen=True)
class Boom:
    """``nozzle_count`` nozzles, ``nozzle_spacing_m`` apart, centred at ``center_y`` [m], on
    the line x = ``nozzle_x`` in ``target_frame``."""

    nozzle_count: int = 12
    nozzle_spacing_m: float = 0.05
    center_y: float = 0.0
    nozzle_x: float = -0.5

    def __post_init__(self) -> None:
        if self.nozzle_count < 1 or not self.nozzle_spacing_m > 0:
            raise ConfigError(f"boom of {self.nozzle_count} nozzles at {self.nozzle_spacing_m} m "
                              "needs at least one nozzle and a positive spacing")

    @property
    def right_edge(self) -> float:
        return self.center_y - self.nozzle_count * self.nozzle_spacing_m / 2.0

    @property
    def width(self) -> float:
        return self.nozzle_count * self.nozzle_spacing_m

    def lane_of(self, y: np.ndarray) -> np.ndarray:
        """Lane index (int16) of lateral positions; −1 outside the boom or NaN."""
        y = np.asarray(y, np.float64)
        with np.errstate(invalid="ignore"):
            idx = np.floor((y - self.right_edge) / self.nozzle_spacing_m)
        ok = np.isfinite(idx) & (idx >= 0) & (idx < self.nozzle_count)
        return np.where(ok, idx, -1).astype(np.int16)

    def lane_center(self, lane: int | np.ndarray) -> np.ndarray:
        return self.right_edge + (np.asarray(lane, np.float64) + 0.5) * self.nozzle_spacing_m

    def lanes_between(self, y_min: float, y_max: float) -> range:
        """Lanes whose footprint overlaps [y_min, y_max] (clipped to the boom)."""
        lo = int(math.floor((y_min - self.right_edge) / self.nozzle_spacing_m))
        hi = int(math.floor((y_max - self.right_edge) / self.nozzle_spacing_m))
        return range(max(lo, 0), min(hi, self.nozzle_count - 1) + 1)
