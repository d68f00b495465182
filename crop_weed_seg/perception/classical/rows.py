"""Crop rows: the row model and its detection in a vegetation mask.

Rows are straight parallel lines at one unknown angle with one unknown, regular spacing. Every
candidate angle (0..180 deg, coarse then fine) is scored by how concentrated the projection of
the vegetation onto the row normal is; the projection is taken as the *excess* over what a
uniform spread of the same vegetation would give (so the image border's shape, e.g. the
triangle of a diagonal projection, does not score). Rows are reported only on clear evidence:
a strongly preferred angle and density contrast across the rows (a closed canopy has none).
With several rows in view, the spacing is the strongest autocorrelation peak of the excess
profile, the phase comes from its Fourier coefficient at the row frequency, and each row
centre-line is refined to the local peak of the profile (:func:`_periodic_rows`). With one or
two rows in view (wide spacing, close-up camera) there is no usable periodicity; the rows are
then the distinct peaks of the profile along which the vegetation runs at least half-way
across the image (:func:`_peak_rows`). The half-width of the average row is measured from the
profile as well.

Geometry of :class:`RowModel`: ``angle_deg`` in [0, 180) is the direction of the rows,
counter-clockwise as seen on screen from the image's +x (rightward) axis; 0 means rows running
left-right, 90 rows running top-bottom. In pixel coordinates (x right, y down) the row direction
is ``d = (cos a, -sin a)`` and the unit normal is ``n = (sin a, cos a)``. ``offsets_px`` are the
signed distances along ``n`` of the row centre-lines from the image centre
``((W - 1) / 2, (H - 1) / 2)``, ascending; for vertical rows that is simply ``x - (W - 1) / 2``,
for horizontal rows ``y - (H - 1) / 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from crop_weed_seg.errors import ConfigError, InvalidFrameError


@dataclass(frozen=True)
class RowModel:
    """Crop rows found in one image (see the module docstring for the geometry).

    ``offsets_px`` is empty when no rows were found; ``angle_deg`` is then the best guess of
    the search (0.0 without vegetation) and carries no meaning. ``spacing_px`` is the regular
    distance between neighbouring rows, ``None`` with fewer than two rows.
    ``row_half_width_px`` is the measured half-width of the (average) row's vegetation band,
    ``None`` when it could not be measured; the crop band is never wider than this.
    """

    angle_deg: float
    offsets_px: list[float] = field(default_factory=list)
    spacing_px: float | None = None
    row_half_width_px: float | None = None

    @property
    def found(self) -> bool:
        """Whether any row centre-line is known."""
        return len(self.offsets_px) > 0

    def normal(self) -> tuple[float, float]:
        """Unit normal ``(nx, ny)`` of the rows in pixel coordinates (x right, y down)."""
        a = math.radians(self.angle_deg)
        return math.sin(a), math.cos(a)

    def distance_to_nearest_row(self, xs: np.ndarray, ys: np.ndarray, width: int,
                                height: int) -> np.ndarray:
        """Distance in pixels from points ``(xs, ys)`` of a ``width x height`` image to the
        nearest row centre-line; ``inf`` everywhere when no rows are known."""
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        if not self.found:
            return np.full(np.broadcast(xs, ys).shape, np.inf)
        nx, ny = self.normal()
        p = (xs - (width - 1) / 2.0) * nx + (ys - (height - 1) / 2.0) * ny
        offsets = np.asarray(self.offsets_px, dtype=np.float64)
        return np.abs(p[..., None] - offsets).min(axis=-1)

    def segments(self, width: int,
                 height: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        """End points ``((x0, y0), (x1, y1))`` of each row centre-line clipped to the image
        (pixel edges at -0.5 and W - 0.5 / H - 0.5), for drawing. Rows that miss the image
        are left out."""
        a = math.radians(self.angle_deg)
        nx, ny = math.sin(a), math.cos(a)
        dx, dy = math.cos(a), -math.sin(a)
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        out = []
        for offset in self.offsets_px:
            px, py = cx + offset * nx, cy + offset * ny
            t0, t1 = _clip_line(px, py, dx, dy, width, height)
            if t1 > t0:
                out.append(((px + t0 * dx, py + t0 * dy), (px + t1 * dx, py + t1 * dy)))
        return out


def _clip_line(px: float, py: float, dx: float, dy: float, width: int,
               height: int) -> tuple[float, float]:
    """Parameter interval of the line ``p + t d`` inside the image rectangle (Liang-Barsky)."""
    t0, t1 = -math.inf, math.inf
    for start, step, lo, hi in ((px, dx, -0.5, width - 0.5), (py, dy, -0.5, height - 0.5)):
        if abs(step) < 1e-12:
            if not lo <= start <= hi:
                return 0.0, 0.0
            continue
        a, b = (lo - start) / step, (hi - start) / step
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
    return t0, t1


def _chord_lengths(offsets: np.ndarray, sin_a: np.ndarray, cos_a: np.ndarray, width: float,
                   height: float) -> np.ndarray:
    """Length inside the ``width x height`` rectangle (centred on the origin) of the lines at
    signed distance ``offsets`` along the normal ``(sin a, cos a)``; vectorised Liang-Barsky.

    ``offsets`` has shape (..., B); ``sin_a``/``cos_a`` broadcast against (..., 1).
    """
    px, py = offsets * sin_a, offsets * cos_a  # foot point of each line
    dx, dy = cos_a, -sin_a
    t0 = np.full(np.broadcast(px, dx).shape, -np.inf)
    t1 = np.full_like(t0, np.inf)
    for start, step, half in ((px, dx, width / 2.0), (py, dy, height / 2.0)):
        step = np.broadcast_to(step, t0.shape)
        start = np.broadcast_to(start, t0.shape)
        moving = np.abs(step) > 1e-9
        safe = np.where(moving, step, 1.0)
        a = (-half - start) / safe
        b = (half - start) / safe
        lo = np.where(moving, np.minimum(a, b), np.where(np.abs(start) <= half, -np.inf, np.inf))
        hi = np.where(moving, np.maximum(a, b), np.where(np.abs(start) <= half, np.inf, -np.inf))
        t0, t1 = np.maximum(t0, lo), np.minimum(t1, hi)
    return np.clip(t1 - t0, 0.0, None)


def _excess_profiles(xs: np.ndarray, ys: np.ndarray, ws: np.ndarray, angles: np.ndarray,
                     width: float, height: float, bin_px: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Projection profiles of weighted points onto the normal of each angle.

    ``xs``/``ys`` are relative to the image centre, in full-resolution pixels. Returns
    ``(h, f, chords, centres)``: the (A, B) vegetation histogram with linear-interpolation
    binning (``bin_px`` wide bins), the excess ``f = h - density x chord`` over a uniform
    spread, the chord lengths per bin, and the (B,) bin centres (pixels along the normal).
    """
    sin_a, cos_a = np.sin(angles)[:, None], np.cos(angles)[:, None]
    half = 0.5 * math.hypot(width, height)
    n_bins = int(math.ceil(2.0 * half / bin_px)) + 3
    origin = half + bin_px  # shift so that every projection lands in bin >= 0
    pos = (xs[None, :] * sin_a + ys[None, :] * cos_a + origin) / bin_px
    i0 = np.floor(pos)
    frac = pos - i0
    idx = i0.astype(np.int64) + (np.arange(len(angles)) * n_bins)[:, None]
    w = np.broadcast_to(ws[None, :], pos.shape)
    size = len(angles) * n_bins
    h = np.bincount(idx.ravel(), weights=(w * (1.0 - frac)).ravel(), minlength=size)[:size]
    h += np.bincount((idx + 1).ravel(), weights=(w * frac).ravel(), minlength=size + 1)[:size]
    h = h.reshape(len(angles), n_bins)
    centres = np.arange(n_bins) * bin_px - origin
    chords = _chord_lengths(centres[None, :], sin_a, cos_a, width, height)
    density = h.sum(axis=1, keepdims=True) / np.maximum(chords.sum(axis=1, keepdims=True), 1e-9)
    return h, h - density * chords, chords, centres


def _smooth(profile: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along the last axis (zero padding)."""
    if sigma <= 0:
        return profile
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    if profile.ndim == 1:
        return np.convolve(profile, kernel, mode="same")
    return np.stack([np.convolve(row, kernel, mode="same") for row in profile])


def _angle_scores(xs: np.ndarray, ys: np.ndarray, ws: np.ndarray, angles_deg: np.ndarray,
                  width: float, height: float, bin_px: float) -> np.ndarray:
    """Concentration (sum of squared, lightly smoothed excess) of the profile per angle."""
    _, f, _, _ = _excess_profiles(xs, ys, ws, np.radians(angles_deg), width, height, bin_px)
    f = (f[:, :-2] + 2.0 * f[:, 1:-1] + f[:, 2:]) / 4.0  # [1 2 1] against binning aliasing
    return (f * f).sum(axis=1)


def _weighted_points(mask: np.ndarray, max_side: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Vegetation points relative to the image centre in full-resolution pixels, with weights,
    from the mask area-downscaled so that its longer side is at most ``max_side``."""
    height, width = mask.shape
    scale = min(1.0, max_side / float(max(height, width)))
    if scale < 1.0:
        small_w = max(1, int(round(width * scale)))
        small_h = max(1, int(round(height * scale)))
        small = cv2.resize(mask.astype(np.float32), (small_w, small_h),
                           interpolation=cv2.INTER_AREA)
        sy, sx = np.nonzero(small > 0.0)
        ws = small[sy, sx].astype(np.float64)
        kx, ky = width / small_w, height / small_h
        xs = (sx + 0.5) * kx - 0.5 - (width - 1) / 2.0
        ys = (sy + 0.5) * ky - 0.5 - (height - 1) / 2.0
        return xs, ys, ws, max(kx, ky)
    py, px = np.nonzero(mask)
    return (px - (width - 1) / 2.0).astype(np.float64), \
        (py - (height - 1) / 2.0).astype(np.float64), np.ones(len(px)), 1.0


def _parabolic_peak(values: np.ndarray, i: int) -> float:
    """Sub-bin position of the local maximum at ``i``."""
    if 0 < i < len(values) - 1:
        a, b, c = values[i - 1], values[i], values[i + 1]
        denom = a - 2.0 * b + c
        if denom < 0:
            return i + 0.5 * (a - c) / denom
    return float(i)


def _comb(h: np.ndarray, chords: np.ndarray, centres: np.ndarray, p0: float, spacing: float,
          extent: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate rows ``p0 + k x spacing`` across the image: ``(ks, positions, densities,
    long_enough)``. Density: vegetation per unit chord within a quarter spacing of the line;
    long enough: the line crosses at least a fifth of the longest chord of the image."""
    ks = np.arange(math.ceil((-extent - p0) / spacing), math.floor((extent - p0) / spacing) + 1)
    positions = p0 + ks * spacing
    densities = np.zeros(len(positions))
    long_enough = np.zeros(len(positions), dtype=bool)
    min_chord = 0.2 * chords.max()
    for j, c in enumerate(positions):
        near = np.abs(centres - c) <= 0.25 * spacing
        chord_sum = chords[near].sum()
        if chord_sum > 0:
            densities[j] = h[near].sum() / chord_sum
        long_enough[j] = np.interp(c, centres, chords) >= min_chord
    return ks, positions, densities, long_enough


@dataclass(frozen=True)
class _Profile:
    """The vegetation projected onto the normal of the chosen row angle."""

    angle: float  # radians
    h: np.ndarray  # vegetation per bin
    f: np.ndarray  # excess over a uniform spread
    chords: np.ndarray  # image chord length per bin
    centres: np.ndarray  # bin centres, pixels along the normal from the image centre
    bin_px: float
    extent: float  # half-extent of the image along the normal
    xs: np.ndarray  # vegetation points (relative to the image centre) and their weights
    ys: np.ndarray
    ws: np.ndarray


def detect_rows(mask: np.ndarray, *, angle_step_deg: float = 2.0, search_max_side: int = 128,
                analysis_max_side: int = 512, min_anisotropy: float = 3.0,
                min_contrast: float = 0.25, min_periodicity: float = 0.35,
                min_spacing_px: float = 10.0) -> RowModel:
    """Find parallel, regularly spaced crop rows in a boolean (H, W) vegetation mask.

    ``angle_step_deg``: coarse angle step (refined to a quarter of it around the best angle) on
    a copy of the mask downscaled to ``search_max_side``. The spacing and the offsets are
    measured on a copy downscaled to ``analysis_max_side`` but reported in input pixels.

    Rows are reported only on clear evidence: ``min_anisotropy``: the best angle's
    concentration score must be at least this many times the median over all angles (rows:
    ~3 to 50, scattered plants: ~1.5 to 3); ``min_contrast``: the vegetation density across
    the rows must vary by at least this coefficient of variation (a closed canopy has none;
    soil strips between rows give ~0.6 and more). Then, when the normalised autocorrelation of
    the profile at some lag reaches ``min_periodicity`` (several rows), the rows are the teeth
    of a comb at that spacing; otherwise (one or two rows in view) they are the strong,
    separate peaks of the profile along which the vegetation runs at least half-way across
    the image, with the spacing of the two strongest when there are several, and the
    measured half-width of the row when there is only one. ``min_spacing_px``: smallest
    spacing considered. Works on any vegetation mask, including one predicted by a model.
    """
    mask = np.asarray(mask).astype(bool, copy=False)
    if mask.ndim != 2:
        raise InvalidFrameError(f"expected an (H, W) mask, got shape {mask.shape}")
    if not 0 < angle_step_deg <= 45:
        raise ConfigError(f"angle_step_deg must be in (0, 45], got {angle_step_deg}")
    height, width = mask.shape
    if int(np.count_nonzero(mask)) < 20:
        return RowModel(angle_deg=0.0)

    # 1. angle: coarse search over [0, 180), then a fine one around the winner
    xs, ys, ws, bin_px = _weighted_points(mask, search_max_side)
    coarse = np.arange(0.0, 180.0, angle_step_deg)
    scores = _angle_scores(xs, ys, ws, coarse, width, height, bin_px)
    best = int(np.argmax(scores))
    anisotropy = float(scores[best] / max(float(np.median(scores)), 1e-12))
    fine = coarse[best] + np.arange(-4, 5) * (angle_step_deg / 4.0)
    scores = _angle_scores(xs, ys, ws, fine, width, height, bin_px)
    angle_deg = float(fine[int(np.argmax(scores))]) % 180.0
    no_rows = RowModel(angle_deg=angle_deg)
    if anisotropy < min_anisotropy:
        return no_rows

    # 2. the profile across the rows at that angle, and its contrast
    angle = math.radians(angle_deg)
    xs, ys, ws, bin_px = _weighted_points(mask, analysis_max_side)
    h, f, chords, centres = _excess_profiles(xs, ys, ws, np.array([angle]), width, height,
                                             bin_px)
    extent = 0.5 * (abs(math.sin(angle)) * width + abs(math.cos(angle)) * height)
    profile = _Profile(angle, h[0], f[0], chords[0], centres, bin_px, extent, xs, ys, ws)
    density = profile.h.sum() / max(float(profile.chords.sum()), 1e-9)
    sigma = max(1.0, 1.5 / bin_px)
    f_s = _smooth(profile.f, sigma)
    contrast = math.sqrt(float(np.sum(f_s * f_s))
                         / max(float(np.sum((density * profile.chords) ** 2)), 1e-12))
    if contrast < min_contrast:
        return no_rows

    # 3. several rows: a periodic profile; one or two: its separate peaks
    found: tuple[list[float], float | None, float | None] | None = _periodic_rows(
        profile, min_periodicity, min_spacing_px, min(width, height))
    if found is None:
        found = _peak_rows(profile, min_spacing_px, min(width, height))
    if found is None:
        return no_rows
    offsets, spacing, half_width = found
    return RowModel(angle_deg=angle_deg, offsets_px=offsets, spacing_px=spacing,
                    row_half_width_px=half_width)


def _periodic_rows(p: _Profile, min_periodicity: float, min_spacing_px: float,
                   short_side: int) -> tuple[list[float], float, float | None] | None:
    """Rows as a comb whose spacing is the strongest autocorrelation peak of the excess
    profile (searched beyond its first zero crossing: the central lobe is one row's width)."""
    sigma = max(1.0, 1.5 / p.bin_px)
    f_s = _smooth(p.f, sigma)
    n = len(f_s)
    spectrum = np.fft.rfft(f_s, 2 * n)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), 2 * n)[:n]
    if ac[0] <= 0:
        return None
    r = ac / ac[0]
    below = np.nonzero(r < 0.0)[0]
    start = max(int(below[0]) if len(below) else n, int(math.ceil(min_spacing_px / p.bin_px)),
                2)
    stop = min(n - 1, int(1.5 * p.extent / p.bin_px) + 1)  # two rows must fit
    lags = [i for i in range(start, stop) if r[i] >= r[i - 1] and r[i] > r[i + 1]]
    if not lags:
        return None
    lag = max(lags, key=lambda i: r[i])
    if r[lag] < min_periodicity:
        return None
    spacing = _parabolic_peak(r, lag) * p.bin_px

    # phase from the Fourier coefficient of the excess at the row frequency, then a comb of
    # candidate lines. If, between the outermost strong lines, every other candidate is much
    # weaker, the autocorrelation locked onto half the spacing (e.g. weeds lined up between
    # the rows): double it.
    phase = float(np.angle(np.sum(p.f * np.exp(2j * np.pi * p.centres / spacing))))
    p0 = phase * spacing / (2.0 * np.pi)
    ks, positions, densities, long_enough = _comb(p.h, p.chords, p.centres, p0, spacing,
                                                  p.extent)
    for _ in range(2):
        if not long_enough.any():
            break
        strong_k = ks[long_enough & (densities >= 0.4 * densities[long_enough].max())]
        span = long_enough & (ks >= strong_k.min()) & (ks <= strong_k.max())
        if span.sum() < 4:
            break
        parity = [span & (ks % 2 == m) for m in (0, 1)]
        means = [float(densities[sel].mean()) for sel in parity]
        strong = int(np.argmax(means))
        if means[1 - strong] >= 0.5 * means[strong]:
            break
        best_j = int(np.argmax(np.where(parity[strong], densities, -1.0)))
        p0, spacing = float(positions[best_j]), 2.0 * spacing
        ks, positions, densities, long_enough = _comb(p.h, p.chords, p.centres, p0, spacing,
                                                      p.extent)
    if not long_enough.any():
        return None
    keep = long_enough & (densities >= 0.4 * densities[long_enough].max())
    if keep.sum() < 2:
        return None

    # refine each kept row to the local peak of the profile, bounded, and refit the spacing
    h_s = _smooth(p.h, sigma)
    refined = []
    for c in positions[keep]:
        near = np.abs(p.centres - c) <= 0.2 * spacing
        local = h_s[near]
        weights = np.clip(local - 0.5 * local.max(), 0.0, None)
        if weights.sum() > 0:
            c_new = float(np.sum(weights * p.centres[near]) / weights.sum())
            c = float(np.clip(c_new, c - 0.15 * spacing, c + 0.15 * spacing))
        refined.append(float(c))
    slope = float(np.polyfit(ks[keep].astype(np.float64), np.asarray(refined), 1)[0])
    if slope > 0:
        spacing = slope
    return sorted(refined), float(spacing), _row_half_width(p, refined, spacing, short_side)


def _row_half_width(p: _Profile, offsets: list[float], spacing: float, short_side: int
                    ) -> float | None:
    """Half-width of the average row: where the excess profile, folded onto one period and
    smoothed, falls to a fifth of the way from the between-row level up to its peak."""
    g = _smooth(p.f, max(1.0, 0.01 * short_side / p.bin_px))
    u = np.arange(-0.5 * spacing, 0.5 * spacing + 1e-9, p.bin_px)
    folded = np.nanmean([np.interp(o + u, p.centres, g, left=np.nan, right=np.nan)
                         for o in offsets], axis=0)
    if np.isnan(folded).any():
        return None
    centre = np.abs(u) <= 0.15 * spacing
    between = np.abs(u) >= 0.35 * spacing
    peak, base = float(folded[centre].max()), float(np.median(folded[between]))
    if peak <= base:
        return None
    threshold = base + 0.2 * (peak - base)
    top = int(np.argmax(np.where(centre, folded, -np.inf)))
    left, right = top, top
    while left > 0 and folded[left] > threshold:
        left -= 1
    while right < len(u) - 1 and folded[right] > threshold:
        right += 1
    return float(max(abs(u[left]), abs(u[right])))


def _peak_rows(p: _Profile, min_spacing_px: float, short_side: int
               ) -> tuple[list[float], float | None, float | None] | None:
    """Rows as the distinct peaks of the smoothed excess profile along which the vegetation
    runs at least half-way across the image (a single big plant does not)."""
    sigma = max(1.0, 0.01 * short_side / p.bin_px)
    g = _smooth(p.f, sigma)
    n = len(g)
    valid = p.chords >= 0.2 * p.chords.max()
    maxima = [i for i in range(1, n - 1)
              if valid[i] and g[i] > 0 and g[i] >= g[i - 1] and g[i] > g[i + 1]]
    if not maxima:
        return None
    g_max = max(g[i] for i in maxima)
    min_separation = max(min_spacing_px / p.bin_px, 6.0 * sigma)
    accepted: list[int] = []  # strongest first; a peak must be separated by a clear dip
    for i in sorted((i for i in maxima if g[i] >= 0.25 * g_max), key=lambda i: -g[i]):
        if all(abs(i - j) >= min_separation
               and g[min(i, j):max(i, j) + 1].min() <= 0.5 * min(g[i], g[j])
               for j in accepted):
            accepted.append(i)

    sin_a, cos_a = math.sin(p.angle), math.cos(p.angle)
    across = p.xs * sin_a + p.ys * cos_a
    along = p.xs * cos_a - p.ys * sin_a
    rows: list[tuple[float, float]] = []  # (offset, half-width), strongest first
    for i in accepted:
        threshold = 0.2 * g[i]
        left, right = i, i
        while left > 0 and g[left] > threshold:
            left -= 1
        while right < n - 1 and g[right] > threshold:
            right += 1
        half_width = max(i - left, right - i) * p.bin_px
        offset = float(p.centres[0] + _parabolic_peak(g, i) * p.bin_px)
        in_band = np.abs(across - offset) <= half_width
        if not in_band.any():
            continue
        lo, hi = np.percentile(along[in_band], [5.0, 95.0])
        if hi - lo >= 0.5 * float(np.interp(offset, p.centres, p.chords)):
            rows.append((offset, half_width))
    if not rows:
        return None
    if len(rows) > 1:
        # the closest pair sets the spacing; keep the peaks on that comb through the strongest
        positions = sorted(o for o, _ in rows)
        spacing = float(np.diff(positions).min())
        first = rows[0][0]
        kept = [(round((o - first) / spacing), o) for o, _ in rows
                if abs((o - first) / spacing - round((o - first) / spacing)) <= 0.15]
        if len(kept) >= 2:
            if len(kept) >= 3:
                ks = np.array([k for k, _ in kept], dtype=np.float64)
                slope = float(np.polyfit(ks, np.array([o for _, o in kept]), 1)[0])
                spacing = abs(slope) if slope != 0 else spacing
            return sorted(o for _, o in kept), spacing, max(w for _, w in rows)
    return [rows[0][0]], None, rows[0][1]


__all__ = ["RowModel", "detect_rows"]
