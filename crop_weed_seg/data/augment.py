"""Training-time augmentation of an (image, label) pair in pure NumPy/OpenCV.

Geometric operations (flips, 90 degree rotations, scaling, cropping) are applied identically to
the image and the label; the label is only ever resized with nearest neighbour, so its values
stay in the class set and 255 ("ignore") stays 255. Regions added by padding are 255 in the
label. Colour operations (brightness, contrast, saturation, hue, blur, noise) touch the image
only. All randomness comes from the ``numpy.random.Generator`` passed in, so the same generator
state and config give the same output.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from crop_weed_seg.classes import IGNORE_INDEX
from crop_weed_seg.data import corruptions
from crop_weed_seg.errors import ConfigError, InvalidFrameError

PAD_MODES: tuple[str, ...] = ("reflect", "zeros")

#: Standard normal quantiles at (i + 0.5) / 256, i = 0..255: maps uniform bytes to N(0, 1).
_NORMAL_QUANTILES: np.ndarray = np.array(
    [NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=np.float32
)


@dataclass(frozen=True)
class AugmentConfig:
    """What to randomise, and how much.

    crop_size: (h, w) of the output, or None to keep the size after scaling and rotation
        (then the output size varies from call to call). A crop larger
        than the image pads it: the image by ``pad_mode``, the label with 255.
    hflip, vflip: flip left-right / up-down with probability 0.5 each.
    rot90: rotate by a random multiple of 90 degrees. With a non-square ``crop_size`` the
        output size is fixed anyway (rotation happens before the crop).
    scale_range: (min, max) scale factor, drawn log-uniformly; None for no scaling.
    brightness, contrast, saturation: factor drawn uniformly from [1 - x, 1 + x]; 0 disables.
    hue: shift drawn uniformly from [-hue, hue], as a fraction of the hue circle (0 .. 0.5).
    blur_prob: probability of a Gaussian blur (kernel 3 or 5).
    noise_std: Gaussian noise with a standard deviation drawn uniformly from [0, noise_std]
        (in 0..255 units); 0 disables.
    pad_mode: "reflect" (mirror, no edge repeat) or "zeros" for image padding.
    kelvin_range: (min, max) colour temperature of the light under a fixed 6500 K white
        balance, drawn uniformly in mired (1e6 / K); None disables.
    exposure_ev: exposure change drawn uniformly from [-x, x] stops (linear light); 0 disables.
    jpeg_prob: probability of JPEG compression at a quality drawn from [15, 60].
    motion_blur_prob: probability of linear motion blur of 3-11 px at a random angle.
    """

    crop_size: tuple[int, int] | None = None
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    scale_range: tuple[float, float] | None = (0.75, 1.33)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    blur_prob: float = 0.1
    noise_std: float = 3.0
    pad_mode: str = "reflect"
    kelvin_range: tuple[float, float] | None = None
    exposure_ev: float = 0.0
    jpeg_prob: float = 0.0
    motion_blur_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.crop_size is not None:
            try:
                ch, cw = (int(v) for v in self.crop_size)
                ok = (ch, cw) == tuple(self.crop_size) and ch >= 1 and cw >= 1
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConfigError(f"crop_size must be two positive integers (h, w), "
                                  f"got {self.crop_size!r}")
            object.__setattr__(self, "crop_size", (ch, cw))
        if self.scale_range is not None:
            try:
                lo, hi = (float(v) for v in self.scale_range)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"scale_range must be (min, max), got {self.scale_range!r}") from None
            if not (0 < lo <= hi) or not np.isfinite(hi):
                raise ConfigError(f"scale_range must satisfy 0 < min <= max, got {(lo, hi)}")
            object.__setattr__(self, "scale_range", (lo, hi))
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 <= self.hue <= 0.5:
            raise ConfigError(
                f"hue must be in [0, 0.5] (a fraction of the hue circle), got {self.hue}")
        if not 0.0 <= self.blur_prob <= 1.0:
            raise ConfigError(f"blur_prob must be in [0, 1], got {self.blur_prob}")
        if not 0.0 <= self.noise_std < 256 or not np.isfinite(self.noise_std):
            raise ConfigError(f"noise_std must be in [0, 256), got {self.noise_std}")
        if self.pad_mode not in PAD_MODES:
            raise ConfigError(f"pad_mode must be one of {', '.join(PAD_MODES)}, "
                              f"got {self.pad_mode!r}")

    @classmethod
    def identity(cls, crop_size: tuple[int, int] | None = None) -> "AugmentConfig":
        """A config that changes nothing except (optionally) a random crop."""
        return cls(crop_size=crop_size, hflip=False, vflip=False, rot90=False, scale_range=None,
                   brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, blur_prob=0.0,
                   noise_std=0.0)


def _check_pair(image: np.ndarray, label: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidFrameError(
            f"augment expects an RGB (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise InvalidFrameError(
            f"augment expects an (H, W) uint8 label, got {label.shape} {label.dtype}")
    if label.shape != image.shape[:2]:
        raise InvalidFrameError(
            f"label shape {label.shape} differs from image shape {image.shape[:2]}")


#: Nearest neighbour for labels. INTER_NEAREST_EXACT samples at pixel centres like
#: INTER_LINEAR/INTER_AREA do for the image; plain INTER_NEAREST is off by up to half a pixel
#: at non-integer scales, which misaligns label edges with image edges.
_LABEL_INTERPOLATION: int = getattr(cv2, "INTER_NEAREST_EXACT", cv2.INTER_NEAREST)

_ROTATIONS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def _geometric(image: np.ndarray, label: np.ndarray, config: AugmentConfig,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Flips and rotations first: exact permutations of pixels, identical for both arrays.
    if config.hflip and rng.random() < 0.5:
        image, label = cv2.flip(image, 1), cv2.flip(label, 1)
    if config.vflip and rng.random() < 0.5:
        image, label = cv2.flip(image, 0), cv2.flip(label, 0)
    if config.rot90:
        k = int(rng.integers(4))
        if k:
            image, label = cv2.rotate(image, _ROTATIONS[k]), cv2.rotate(label, _ROTATIONS[k])

    if config.scale_range is not None:
        lo, hi = config.scale_range
        scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo
        h, w = label.shape
        new_h, new_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        if (new_h, new_w) != (h, w):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, (new_w, new_h), interpolation=interp)
            label = cv2.resize(label, (new_w, new_h), interpolation=_LABEL_INTERPOLATION)

    if config.crop_size is not None:
        ch, cw = config.crop_size
        h, w = label.shape
        pad_h, pad_w = max(0, ch - h), max(0, cw - w)
        if pad_h or pad_w:
            top = int(rng.integers(pad_h + 1))
            left = int(rng.integers(pad_w + 1))
            pads = (top, pad_h - top, left, pad_w - left)
            image = _pad_image(image, pads, config.pad_mode)
            label = cv2.copyMakeBorder(label, *pads, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
        h, w = label.shape
        y = int(rng.integers(h - ch + 1))
        x = int(rng.integers(w - cw + 1))
        image = image[y:y + ch, x:x + cw]
        label = label[y:y + ch, x:x + cw]
    return image, label


def _pad_image(image: np.ndarray, pads: tuple[int, int, int, int], mode: str) -> np.ndarray:
    """Pad (top, bottom, left, right) by mirroring (no edge repeat) or with zeros."""
    top, bottom, left, right = pads
    if mode == "zeros" or min(image.shape[:2]) < 2:
        return cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                  value=(0, 0, 0))
    # BORDER_REFLECT_101 cannot add more than size - 1 per side in one call: repeat.
    while top or bottom or left or right:
        ih, iw = image.shape[:2]
        t, b = min(top, ih - 1), min(bottom, ih - 1)
        lf, r = min(left, iw - 1), min(right, iw - 1)
        image = cv2.copyMakeBorder(image, t, b, lf, r, cv2.BORDER_REFLECT_101)
        top, bottom, left, right = top - t, bottom - b, left - lf, right - r
    return image


def _photometric(image: np.ndarray, config: AugmentConfig,
                 rng: np.random.Generator) -> np.ndarray:
    """Colour jitter, blur and noise on an RGB (H, W, 3) uint8 image; returns uint8."""
    # Draw every random number first, in a fixed order, then apply.
    b = float(rng.uniform(1 - config.brightness, 1 + config.brightness)) \
        if config.brightness > 0 else 1.0
    c = float(rng.uniform(1 - config.contrast, 1 + config.contrast)) \
        if config.contrast > 0 else 1.0
    s = float(rng.uniform(1 - config.saturation, 1 + config.saturation)) \
        if config.saturation > 0 else 1.0
    h = float(rng.uniform(-config.hue, config.hue)) if config.hue > 0 else 0.0
    blur_k = 0
    if config.blur_prob > 0 and rng.random() < config.blur_prob:
        blur_k = 3 if rng.random() < 0.5 else 5
    noise_sigma = float(rng.uniform(0.0, config.noise_std)) if config.noise_std > 0 else 0.0
    # Camera effects (added later; drawn after the original ones so that configs without them
    # keep their exact random stream).
    kelvin = None
    if config.kelvin_range is not None:
        lo, hi = (1e6 / k for k in config.kelvin_range)
        kelvin = 1e6 / float(rng.uniform(min(lo, hi), max(lo, hi)))
    ev = float(rng.uniform(-config.exposure_ev, config.exposure_ev)) \
        if config.exposure_ev > 0 else 0.0
    jpeg_q = int(rng.integers(15, 61)) \
        if config.jpeg_prob > 0 and rng.random() < config.jpeg_prob else 0
    motion = (float(rng.uniform(3, 11)), float(rng.uniform(0, 180))) \
        if config.motion_blur_prob > 0 and rng.random() < config.motion_blur_prob else None

    if kelvin is not None:
        image = corruptions.colour_temperature(image, kelvin)
    if ev != 0.0:
        image = corruptions.exposure(image, ev)
    if motion is not None:
        image = corruptions.motion_blur(image, *motion)

    if s != 1.0:
        grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        image = cv2.addWeighted(image, s, grey, 1.0 - s, 0.0)  # saturates to 0..255
    if c != 1.0 or b != 1.0:
        # out = ((x - m) * c + m) * b with m the mean grey level; addWeighted saturates.
        mean = float(cv2.mean(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))[0])
        image = cv2.addWeighted(image, c * b, image, 0.0, mean * b * (1.0 - c))
    if h != 0.0:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # OpenCV 8-bit hue is 0..179
        shift = int(round(h * 180)) % 180
        if shift:
            lut = ((np.arange(256) + shift) % 180).astype(np.uint8)
            hsv[:, :, 0] = cv2.LUT(hsv[:, :, 0], lut)
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if blur_k:
        image = cv2.GaussianBlur(image, (blur_k, blur_k), 0)
    if noise_sigma > 0:
        # Uniform random bytes mapped through the normal quantile function: Gaussian noise
        # quantised to 256 levels (|z| <= 2.9), several times faster than drawing normals.
        codes = np.frombuffer(rng.bytes(image.size), dtype=np.uint8).reshape(image.shape)
        noise = cv2.LUT(codes, _NORMAL_QUANTILES * np.float32(noise_sigma))
        image = cv2.add(image, noise, dtype=cv2.CV_8U)  # rounds and saturates to 0..255
    if jpeg_q:
        image = corruptions.jpeg(image, jpeg_q)
    return image


def augment(image: np.ndarray, label: np.ndarray, config: AugmentConfig,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Randomly transform an (image, label) pair.

    ``image`` is RGB (H, W, 3) uint8, ``label`` (H, W) uint8 class ids (255 = ignore). Returns
    new C-contiguous ``(image (H', W', 3) uint8, label (H', W') uint8)``; (H', W') is
    ``config.crop_size`` when set, else the size after scaling and rotation. The inputs are not
    modified. The result depends only on the inputs, ``config`` and the state of ``rng``.
    """
    _check_pair(image, label)
    # OpenCV rejects views with negative strides; this copies only such views.
    out_image, out_label = _geometric(np.ascontiguousarray(image), np.ascontiguousarray(label),
                                      config, rng)
    out_image = _photometric(out_image, config, rng)
    # Never hand back (a view of) the caller's arrays.
    if np.may_share_memory(out_image, image) or not out_image.flags.c_contiguous:
        out_image = out_image.copy()
    if np.may_share_memory(out_label, label) or not out_label.flags.c_contiguous:
        out_label = out_label.copy()
    return out_image, out_label
