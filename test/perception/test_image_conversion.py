"""Our cv_bridge replacement: sensor_msgs Image / CompressedImage <-> numpy arrays."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from crop_weed_seg.errors import InvalidFrameError  # noqa: E402
from crop_weed_seg.perception.image_conversion import (  # noqa: E402
    BAYER_CODES,
    ENCODINGS,
    YUV_ENCODINGS,
    array_to_image,
    compressed_to_array,
    image_to_array,
)

from support.yuv import i420_reference, yuv_message, yuv_payload  # noqa: E402

PLAIN = [e for e in ENCODINGS if e not in BAYER_CODES]
EXPECTED_ORDER = {"rgb8": "RGB", "bgr8": "BGR", "rgba8": "RGB", "bgra8": "BGR",
                  "mono8": "MONO", "mono16": "MONO", "rgb16": "RGB", "bgr16": "BGR",
                  "rgba16": "RGB", "bgra16": "BGR"}


def _random_pixels(encoding: str, h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    channels, dtype, _ = ENCODINGS[encoding]
    shape = (h, w) if channels == 1 else (h, w, channels)
    hi = 256 if dtype.itemsize == 1 else 65536
    return np.random.default_rng(seed).integers(0, hi, shape, dtype=dtype)


def _message(pixels: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False,
             pad_byte: int = 0xAB) -> Image:
    """A hand-built Image message (independent of array_to_image) with `pad` bytes per row."""
    h, w = pixels.shape[:2]
    wire = pixels.astype(pixels.dtype.newbyteorder(">" if big_endian else "<"))
    rows = wire.reshape(h, -1).view(np.uint8).reshape(h, -1)
    padded = np.full((h, rows.shape[1] + pad), pad_byte, np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big_endian),
                step=padded.shape[1])
    msg.data = array.array("B", padded.tobytes())
    return msg


@pytest.mark.parametrize("encoding", PLAIN)
def test_every_plain_encoding_round_trips_through_a_message(encoding: str) -> None:
    pixels = _random_pixels(encoding)
    msg = array_to_image(pixels, encoding)
    channels, dtype, _ = ENCODINGS[encoding]
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (5, 7, encoding, 0)
    assert msg.step == 7 * channels * dtype.itemsize and len(msg.data) == msg.step * 5
    back, order = image_to_array(msg)
    assert order == EXPECTED_ORDER[encoding]
    assert back.dtype == pixels.dtype and back.shape == pixels.shape
    assert np.array_equal(back, pixels)


@pytest.mark.parametrize("encoding", PLAIN)
def test_padded_rows_are_read_without_the_padding(encoding: str) -> None:
    pixels = _random_pixels(encoding, seed=1)
    msg = _message(pixels, encoding, pad=6, pad_byte=0xEE)
    back, _ = image_to_array(msg)
    assert back.shape == pixels.shape and back.dtype == pixels.dtype
    assert np.array_equal(back, pixels)
    assert back.tobytes() == pixels.tobytes()  # the 0xEE padding did not leak in


def test_padded_rows_are_a_view_on_the_message_buffer_not_a_copy() -> None:
    pixels = _random_pixels("bgr8", h=4, w=3)
    msg = _message(pixels, "bgr8", pad=3)
    back, _ = image_to_array(msg)
    assert np.shares_memory(back, np.frombuffer(msg.data, np.uint8))
    assert back.strides[0] == msg.step
    assert cv2.resize(back, (6, 8)).shape == (8, 6, 3)  # OpenCV accepts the strided view


def test_data_longer_than_step_times_height_is_accepted() -> None:
    pixels = _random_pixels("mono8")
    msg = _message(pixels, "mono8")
    msg.data = array.array("B", bytes(msg.data) + b"\x01\x02\x03")
    assert np.array_equal(image_to_array(msg)[0], pixels)


@pytest.mark.parametrize("encoding", [e for e in PLAIN if e.endswith("16")])
def test_big_endian_16_bit_data_is_byteswapped_to_native(encoding: str) -> None:
    pixels = _random_pixels(encoding, seed=2)
    msg = _message(pixels, encoding, pad=4, big_endian=True)
    back, _ = image_to_array(msg)
    assert back.dtype == np.uint16 and back.dtype.isnative
    assert np.array_equal(back, pixels)


def test_little_endian_16_bit_data_is_not_swapped() -> None:
    pixels = np.array([[0x0102, 0xA0B0]], np.uint16)
    msg = _message(pixels, "mono16", big_endian=False)
    assert bytes(msg.data) == b"\x02\x01\xb0\xa0"
    assert image_to_array(msg)[0].tolist() == [[0x0102, 0xA0B0]]


def test_4_channel_images_keep_their_alpha_channel() -> None:
    pixels = _random_pixels("bgra8")
    back, order = image_to_array(_message(pixels, "bgra8"))
    assert order == "BGR" and back.shape == (5, 7, 4)


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Mosaic literally by the ROS name: pattern[0] at (0, 0), [1] at (0, 1), [2] (1, 0)..."""
    index = {"r": 0, "g": 1, "b": 2}
    out = np.empty(rgb.shape[:2], np.uint8)
    for letter, (dy, dx) in zip(pattern, [(0, 0), (0, 1), (1, 0), (1, 1)]):
        out[dy::2, dx::2] = rgb[dy::2, dx::2, index[letter]]
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_images_are_demosaiced_to_the_right_colours(pattern: str) -> None:
    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[:, :8] = (200, 90, 20)   # orange left half
    rgb[:, 8:] = (10, 60, 220)   # blue right half
    encoding = f"bayer_{pattern}8"
    back, order = image_to_array(_message(_mosaic(rgb, pattern), encoding, pad=5))
    assert order == "RGB" and back.shape == (12, 16, 3) and back.dtype == np.uint8
    assert np.array_equal(back[2:10, 2:6], rgb[2:10, 2:6])
    assert np.array_equal(back[2:10, 10:14], rgb[2:10, 10:14])


def test_bayer_mapping_matches_cv_bridge() -> None:
    assert BAYER_CODES == {"bayer_rggb8": cv2.COLOR_BayerBG2RGB,
                           "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
                           "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
                           "bayer_grbg8": cv2.COLOR_BayerGB2RGB}


# ------------------------------------------------------------------------------------ YUV
YUV = ["yuv422", "uyvy", "yuv422_yuy2", "yuyv", "nv12", "nv21", "nv24"]
#: OpenCV's converter for each encoding, written out here (not taken from the module)
OPENCV_CODE = {"yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
               "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
               "nv12": cv2.COLOR_YUV2RGB_NV12, "nv21": cv2.COLOR_YUV2RGB_NV21}


def _scene(h: int = 24, w: int = 32, seed: int = 7) -> np.ndarray:
    """Colour blocks (aligned to 2×2, so chroma subsampling loses nothing) plus noise."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = (200, 90, 20)          # orange
    rgb[:, w // 2:] = (10, 60, 220)           # blue
    rgb[h // 2:, : w // 4] = (40, 180, 50)    # green
    noise = np.random.default_rng(seed).integers(-12, 13, (h // 2, w // 2, 1))
    return np.clip(rgb + np.repeat(np.repeat(noise, 2, 0), 2, 1), 0, 255).astype(np.uint8)


def test_yuv_encodings_are_the_ones_ros_defines_with_cv_bridges_codes() -> None:
    """Names of sensor_msgs/image_encodings.hpp (Jazzy/Kilted/Rolling): yuv422 and yuv422_yuy2
    (deprecated there for uyvy and yuyv), nv12, nv21, nv24; cv_bridge converts yuv422 with
    COLOR_YUV2*_UYVY and yuv422_yuy2 with COLOR_YUV2*_YUY2."""
    assert set(YUV_ENCODINGS) == set(YUV)
    assert not set(YUV_ENCODINGS) & set(ENCODINGS)
    for encoding, code in OPENCV_CODE.items():
        assert YUV_ENCODINGS[encoding][1] == code, encoding


@pytest.mark.parametrize("encoding", YUV)
@pytest.mark.parametrize("pad", [0, 6])
def test_yuv_images_decode_as_opencvs_converter_does(encoding: str, pad: int) -> None:
    rgb = _scene()
    data, step, unpadded = yuv_payload(rgb, encoding, pad=pad)
    msg = yuv_message(rgb, encoding, pad=pad)
    assert msg.step == step and bytes(msg.data) == data
    back, order = image_to_array(msg)
    assert order == "RGB" and back.dtype == np.uint8 and back.shape == rgb.shape
    if encoding in OPENCV_CODE:  # OpenCV's own converter on the unpadded buffer
        assert np.array_equal(back, cv2.cvtColor(unpadded, OPENCV_CODE[encoding]))
    # every encoding of the same samples: OpenCV's I420 converter (nv24: chroma per pixel)
    assert np.array_equal(back, i420_reference(rgb))
    # and the colours are the scene's (no U/V or R/B swap): BT.601 rounding only
    assert np.abs(back.astype(int) - rgb).max() <= 4


def test_nv24_has_a_chroma_sample_per_pixel() -> None:
    """4:4:4: neighbouring pixels of different colour keep them (no chroma sharing); checked
    against OpenCV's 4:2:0 converter on the same samples, one pixel per 2×2 block."""
    rng = np.random.default_rng(3)
    y = rng.integers(16, 236, (3, 5), dtype=np.uint8)
    u = rng.integers(16, 241, (3, 5), dtype=np.uint8)
    v = rng.integers(16, 241, (3, 5), dtype=np.uint8)
    pad = 3
    step = 5 + pad
    planes = np.full((3, step), 0xEE, np.uint8)
    planes[:, :5] = y
    chroma = np.full((3, 2 * step), 0xEE, np.uint8)
    chroma[:, :10] = np.stack([u, v], -1).reshape(3, 10)
    msg = Image(height=3, width=5, encoding="nv24", step=step)
    msg.data = array.array("B", planes.tobytes() + chroma.tobytes())
    back, order = image_to_array(msg)
    # each pixel as a 2×2 block of an I420 image: Y repeated, one U and V
    big_y = np.repeat(np.repeat(y, 2, 0), 2, 1)
    i420 = np.concatenate([big_y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(9, 10)
    expected = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)[::2, ::2]
    assert order == "RGB" and back.shape == (3, 5, 3) and np.array_equal(back, expected)


def test_yuv_with_data_longer_than_needed_is_accepted() -> None:
    rgb = _scene(8, 12)
    msg = yuv_message(rgb, "nv21")
    msg.data = array.array("B", bytes(msg.data) + b"\x10" * 7)
    assert np.array_equal(image_to_array(msg)[0], i420_reference(rgb))


def test_odd_height_is_fine_for_4_2_2_and_any_size_for_nv24() -> None:
    packed = np.random.default_rng(2).integers(0, 256, (5, 8, 2), dtype=np.uint8)
    msg = Image(height=5, width=8, encoding="yuv422", step=16)
    msg.data = array.array("B", packed.tobytes())
    assert np.array_equal(image_to_array(msg)[0], cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_UYVY))
    for h, w in [(1, 1), (3, 5), (7, 2)]:
        msg = Image(height=h, width=w, encoding="nv24", step=w)
        msg.data = array.array("B", bytes([128]) * (3 * h * w))
        back, _ = image_to_array(msg)
        assert back.shape == (h, w, 3) and (back == back[0, 0]).all()


@pytest.mark.parametrize("encoding, h, w, step, size, message", [
    ("yuv422", 5, 7, 14, 70, r"yuv422 image of 5×7 has an odd width; YUV 4:2:2"),
    ("yuv422_yuy2", 4, 9, 18, 72, r"yuv422_yuy2 image of 4×9 has an odd width"),
    ("nv21", 5, 8, 8, 100, r"nv21 image of 5×8 has an odd width or height; YUV 4:2:0"),
    ("nv12", 4, 7, 7, 100, r"nv12 image of 4×7 has an odd width or height"),
    ("yuyv", 4, 8, 15, 100, r"yuyv image step 15 is smaller than width 8 × 2 bytes per pixel "
                            r"= 16"),
    ("nv21", 4, 8, 7, 100, r"nv21 image step 7 is smaller than width 8 × 1 byte of Y per "
                           r"pixel = 8"),
    ("uyvy", 4, 8, 16, 63, r"uyvy image of 4×8 holds 63 bytes of data, fewer than step 16 × "
                           r"height 4 = 64"),
    ("nv21", 4, 8, 10, 59, r"nv21 image of 4×8 holds 59 bytes of data, fewer than step 10 × "
                           r"\(height 4 \+ 2 chroma rows\) = 60"),
    ("nv24", 4, 6, 6, 71, r"nv24 image of 4×6 holds 71 bytes of data, fewer than step 6 × "
                          r"height 4 \(Y\) \+ 2 × step × height \(UV\) = 72"),
    ("nv24", 0, 6, 6, 0, r"nv24 image has height 0 and width 6"),
])
def test_impossible_yuv_sizes_are_an_invalid_frame_naming_encoding_and_size(
        encoding: str, h: int, w: int, step: int, size: int, message: str) -> None:
    msg = Image(height=h, width=w, encoding=encoding, step=step)
    msg.data = array.array("B", bytes(size))
    with pytest.raises(InvalidFrameError, match=message):
        image_to_array(msg)


@pytest.mark.parametrize("encoding, forward", [("yuv422", "COLOR_RGB2YUV_UYVY"),
                                               ("yuv422_yuy2", "COLOR_RGB2YUV_YUY2")])
def test_packed_yuv_from_opencvs_own_4_2_2_encoder(encoding: str, forward: str) -> None:
    """Where OpenCV has the 4:2:2 forward conversion (4.7+): its output, padded, decodes as
    OpenCV decodes it."""
    code = getattr(cv2, forward, None)
    if code is None:
        pytest.skip(f"OpenCV {cv2.__version__} has no {forward}")
    rgb = _scene(10, 16)
    packed = cv2.cvtColor(rgb, code)
    assert packed.shape == (10, 16, 2)
    msg = _message(packed.reshape(10, 32), "mono8", pad=5)
    msg.encoding, msg.width = encoding, 16
    back, _ = image_to_array(msg)
    assert np.array_equal(back, cv2.cvtColor(packed, OPENCV_CODE[encoding]))
    assert np.abs(back.astype(int) - rgb).max() <= 6


def _compressed(data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    return msg


def test_png_compressed_colour_image_round_trips_exactly_as_bgr() -> None:
    bgr = _random_pixels("bgr8", h=9, w=11, seed=3)
    ok, png = cv2.imencode(".png", bgr)
    back, order = compressed_to_array(_compressed(png.tobytes(), "bgr8; png compressed bgr8"))
    assert ok and order == "BGR" and np.array_equal(back, bgr)


def test_png_compressed_grey_image_comes_back_mono() -> None:
    grey = _random_pixels("mono8", h=9, w=11, seed=4)
    ok, png = cv2.imencode(".png", grey)
    back, order = compressed_to_array(_compressed(png.tobytes(), "mono8; png compressed "))
    assert ok and order == "MONO" and back.shape == (9, 11) and np.array_equal(back, grey)


def test_jpeg_compressed_image_round_trips_close_to_the_original() -> None:
    bgr = np.zeros((32, 48, 3), np.uint8)
    bgr[:, :24] = (30, 160, 220)
    bgr[:, 24:] = (200, 40, 10)
    ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    back, order = compressed_to_array(_compressed(jpg.tobytes(), "bgr8; jpeg compressed bgr8"))
    assert ok and order == "BGR" and back.shape == bgr.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - bgr).mean() < 3


def test_corrupt_compressed_payload_is_an_invalid_frame() -> None:
    with pytest.raises(InvalidFrameError, match=r"'jpeg'.*12 bytes.*could not be decoded"):
        compressed_to_array(_compressed(b"not an image", "jpeg"))


def test_truncated_jpeg_header_is_an_invalid_frame() -> None:
    ok, jpg = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InvalidFrameError, match="could not be decoded"):
        compressed_to_array(_compressed(jpg.tobytes()[:20], "jpeg"))


def test_empty_compressed_payload_is_an_invalid_frame() -> None:
    with pytest.raises(InvalidFrameError, match="empty payload"):
        compressed_to_array(_compressed(b"", "png"))


def test_compressed_depth_format_is_refused_with_a_clear_message() -> None:
    with pytest.raises(InvalidFrameError, match="compressedDepth"):
        compressed_to_array(_compressed(b"\x00" * 40, "16UC1; compressedDepth png"))


def test_unknown_encoding_is_an_invalid_frame_listing_the_supported_ones() -> None:
    msg = _message(np.zeros((2, 2), np.uint8), "mono8")
    msg.encoding = "bayer_rggb16"
    with pytest.raises(InvalidFrameError, match=r"'bayer_rggb16' is not supported.*rgb8.*"
                                                r"bayer_grbg8.*yuv422.*yuv422_yuy2.*nv21.*nv24"):
        image_to_array(msg)


def test_step_smaller_than_a_row_is_an_invalid_frame() -> None:
    msg = _message(_random_pixels("rgb8"), "rgb8")
    msg.step = 20
    with pytest.raises(InvalidFrameError,
                       match=r"rgb8 image step 20 is smaller than width 7 .* = 21"):
        image_to_array(msg)


def test_data_shorter_than_step_times_height_is_an_invalid_frame() -> None:
    msg = _message(_random_pixels("mono16"), "mono16", pad=2)
    msg.data = array.array("B", bytes(msg.data)[:-1])
    with pytest.raises(InvalidFrameError,
                       match=r"mono16 image data holds 79 bytes, fewer than step 16 .* = 80"):
        image_to_array(msg)


@pytest.mark.parametrize("height, width", [(0, 4), (3, 0)])
def test_empty_dimensions_are_an_invalid_frame(height: int, width: int) -> None:
    msg = Image(height=height, width=width, encoding="bgr8", step=12)
    with pytest.raises(InvalidFrameError,
                       match=f"bgr8 image has height {height} and width {width}"):
        image_to_array(msg)


def test_16_bit_step_that_is_not_a_multiple_of_2_is_an_invalid_frame() -> None:
    msg = _message(_random_pixels("mono16", h=3, w=4), "mono16", pad=1)
    assert msg.step == 9
    with pytest.raises(InvalidFrameError,
                       match=r"mono16 image step 9 is not a multiple of the element size 2"):
        image_to_array(msg)


def test_8_bit_step_that_is_not_a_multiple_of_the_pixel_size_is_fine() -> None:
    pixels = _random_pixels("rgb8", h=3, w=4)
    msg = _message(pixels, "rgb8", pad=1)
    assert msg.step == 13 and np.array_equal(image_to_array(msg)[0], pixels)


def test_array_to_image_copies_the_header() -> None:
    header = Header(stamp=Time(sec=1700000000, nanosec=123456789), frame_id="camera_optical")
    msg = array_to_image(np.zeros((3, 4), np.uint8), "mono8", header=header)
    assert msg.header.stamp.sec == 1700000000 and msg.header.stamp.nanosec == 123456789
    assert msg.header.frame_id == "camera_optical"
    header.frame_id = "changed later"
    assert msg.header.frame_id == "camera_optical"


def test_array_to_image_without_a_header_leaves_it_default() -> None:
    msg = array_to_image(np.zeros((3, 4, 3), np.uint8), "bgr8")
    assert msg.header.frame_id == "" and msg.header.stamp.sec == 0


def test_array_to_image_accepts_a_non_contiguous_array() -> None:
    big = _random_pixels("bgr8", h=6, w=8)
    view = big[::2, 1:5]
    assert np.array_equal(image_to_array(array_to_image(view, "bgr8"))[0], view)


def test_array_to_image_writes_16_bit_data_little_endian() -> None:
    msg = array_to_image(np.array([[0x0102]], np.uint16), "mono16")
    assert msg.is_bigendian == 0 and bytes(msg.data) == b"\x02\x01"


def test_is_bigendian_is_ignored_for_8_bit_data() -> None:
    pixels = _random_pixels("rgb8")
    msg = _message(pixels, "rgb8", big_endian=True)
    assert np.array_equal(image_to_array(msg)[0], pixels)


def test_array_to_image_accepts_a_single_channel_third_axis_for_mono() -> None:
    msg = array_to_image(np.ones((2, 3, 1), np.uint8), "mono8")
    assert (msg.height, msg.width, msg.step) == (2, 3, 3)


@pytest.mark.parametrize("array_, encoding, message", [
    (np.zeros((3, 4), np.uint8), "bgr8", r"bgr8 needs an array of shape \(H, W, 3\), got \(3, 4\)"),
    (np.zeros((3, 4, 4), np.uint8), "rgb8",
     r"rgb8 needs an array of shape \(H, W, 3\), got \(3, 4, 4\)"),
    (np.zeros((3, 4, 3), np.uint8), "mono8",
     r"mono8 needs an array of shape \(H, W\), got \(3, 4, 3\)"),
    (np.zeros((3, 4), np.uint16), "mono8", "mono8 needs a uint8 array, got uint16"),
    (np.zeros((3, 4), np.float32), "mono16", "mono16 needs a uint16 array, got float32"),
    (np.zeros((0, 4), np.uint8), "mono8", r"mono8 array of shape \(0, 4\) is empty"),
    (np.zeros((3, 4), np.uint8), "bayer_rggb8", "publishing bayer_rggb8 is not supported"),
    (np.zeros((3, 4, 2), np.uint8), "yuv422", "publishing yuv422 is not supported"),
    (np.zeros((3, 4), np.uint8), "nv21", "publishing nv21 is not supported"),
    (np.zeros((3, 4), np.uint8), "yuv_magic", "'yuv_magic' is not supported"),
])
def test_array_to_image_refuses_arrays_that_do_not_fit_the_encoding(
        array_: np.ndarray, encoding: str, message: str) -> None:
    with pytest.raises(InvalidFrameError, match=message):
        array_to_image(array_, encoding)


CV_BRIDGE_CASES = [("rgb8", 0, False), ("bgra8", 3, False), ("mono8", 1, False),
                   ("mono16", 2, False), ("mono16", 0, True), ("rgb16", 6, True),
                   ("bayer_grbg8", 5, False)]


@pytest.mark.parametrize("encoding,pad,big_endian", CV_BRIDGE_CASES)
def test_same_arrays_as_cv_bridge_where_it_is_installed(encoding: str, pad: int,
                                                        big_endian: bool) -> None:
    """On a robot's ROS install (cv_bridge importable) both must agree; the pip environment
    here has no ROS 2 cv_bridge (the PyPI one is a broken ROS 1 snapshot), so this runs there."""
    cv_bridge = pytest.importorskip("cv_bridge", reason="ROS 2 cv_bridge is not installed")
    bridge = cv_bridge.CvBridge()
    pixels = _random_pixels(encoding, h=8, w=10, seed=11)
    msg = _message(pixels, encoding, pad=pad, big_endian=big_endian)
    ours, order = image_to_array(msg)
    if encoding.startswith("bayer"):
        theirs = bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    else:
        theirs = bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
    assert np.array_equal(np.asarray(ours), np.asarray(theirs).reshape(np.asarray(ours).shape))
    if not encoding.startswith("bayer"):
        back = array_to_image(np.ascontiguousarray(ours), encoding)
        ref = bridge.cv2_to_imgmsg(np.ascontiguousarray(theirs), encoding=encoding)
        assert (back.height, back.width, back.step) == (ref.height, ref.width, ref.step)
        assert bytes(back.data) == bytes(ref.data) or ref.is_bigendian != back.is_bigendian


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_yuv_same_as_cv_bridge_where_it_is_installed(encoding: str) -> None:
    """cv_bridge converts these two (to rgb8); nv12/nv21/nv24 it does not (yet)."""
    cv_bridge = pytest.importorskip("cv_bridge", reason="ROS 2 cv_bridge is not installed")
    msg = yuv_message(_scene(), encoding, pad=4)
    ours, _ = image_to_array(msg)
    theirs = cv_bridge.CvBridge().imgmsg_to_cv2(msg, desired_encoding="rgb8")
    assert np.array_equal(ours, np.asarray(theirs))
