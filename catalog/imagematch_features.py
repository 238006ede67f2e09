"""Photo-match features of one image, and how well two images' features agree.

Classical computer vision (no model weights): each image is normalised (orientation, colour mode,
size, CLAHE on luminance so lighting matters less) and described by

- ORB keypoints and binary descriptors: invariant to rotation, tolerant of scale, crop, JPEG
  artefacts and brightness; compared with a ratio test and verified by a RANSAC homography;
- a hue/saturation histogram (plus a few lightness bins for grey pixels): cheap, ignores
  geometry, and tells colourways of the same product apart.

Pure CPU work with no Django; callers run it in a thread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

WORK_SIZE = 512  # longest side, in pixels, of the image the features are computed on
MAX_KEYPOINTS = 500
_DETECTED = 2000  # candidates ORB detects before MAX_KEYPOINTS are picked from all over the image
MIN_SIDE = 16
_HUE_BINS, _SAT_BINS, _GREY_BINS = 18, 3, 4
COLOUR_BINS = _HUE_BINS * _SAT_BINS + _GREY_BINS
_RATIO = 0.8  # Lowe's ratio test: best match clearly better than the second best
_RANSAC_PIXELS = 6.0
_MIN_INLIERS = 6
_GRID = 8

Floats = npt.NDArray[np.float32]
Bytes = npt.NDArray[np.uint8]


class UnusableImage(ValueError):
    """The image is too small or degenerate to describe."""


@dataclass(frozen=True, eq=False)
class ImageFeatures:
    """What photo match keeps of one image; strongest keypoints first."""

    keypoints: Floats  # (n, 2) x, y in the normalised image
    descriptors: Bytes  # (n, 32) ORB descriptors
    colour: Floats  # (COLOUR_BINS,) histogram summing to 1 (or all zero for an empty image)


@dataclass(frozen=True)
class Agreement:
    """How two images' features agree: geometric inliers, their spread, colour similarity."""

    inliers: int
    spread: float  # share of the candidate's keypoint-bearing grid cells that hold inliers, 0..1
    colour: float  # Bhattacharyya coefficient of the colour histograms, 0..1

    @property
    def score(self) -> float:
        """0..1: near 0 without a consistent geometric match, near 1 for many well-spread inliers."""
        if self.inliers < _MIN_INLIERS:
            return 0.0
        evidence = 1.0 - math.exp(-(self.inliers - _MIN_INLIERS + 1) / 40.0)
        # A shared brand logo gives a tight cluster of inliers; the product itself spreads out.
        spread = min(1.0, self.spread / 0.4)
        return evidence * spread * (0.8 + 0.2 * self.colour)


def image_features(image: Image.Image, *, max_keypoints: int = MAX_KEYPOINTS, size: int = WORK_SIZE) -> ImageFeatures:
    """Describe an image for photo match (about 10-20 ms for a typical photo).

    Catalog images use the defaults. A query photo is better described larger and with more
    keypoints: the product often fills less of a photo than of a catalog image, and ORB's image
    pyramid only looks at coarser scales, never finer ones.

    Raises:
        UnusableImage: smaller than 16 pixels on a side.
    """
    rgb = normalised_rgb(image, size=size)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    # Equalised lightness: ORB then sees the same corners under brighter or duller light.
    lightness = np.asarray(cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[:, :, 0]), np.uint8)
    orb = cv2.ORB.create(nfeatures=_DETECTED, fastThreshold=12)
    chosen = _spread_out(orb.detect(lightness, None), limit=max_keypoints, size=size)
    found, computed = orb.compute(lightness, chosen)
    keypoints = np.array([point.pt for point in found], np.float32).reshape(-1, 2)
    descriptors: Bytes = np.zeros((0, 32), np.uint8)
    if computed is not None and len(found):
        descriptors = np.ascontiguousarray(computed, np.uint8)
    else:
        keypoints = np.zeros((0, 2), np.float32)
    return ImageFeatures(keypoints=keypoints, descriptors=descriptors, colour=_colour_histogram(rgb, lightness))


def _spread_out(found: Sequence[cv2.KeyPoint], *, limit: int, size: int) -> list[cv2.KeyPoint]:
    """The `limit` strongest keypoints, taken in turns from each grid cell, strongest first.

    Without this a repetitive pattern (stripes, dots) takes most of the budget, and its look-alike
    corners fail the ratio test; spreading keeps distinctive detail from every part of the image.
    """
    if not found:
        return []
    points = np.array([point.pt for point in found], np.float32)
    cells = _cells(points, size=size)
    order = np.lexsort((-np.array([point.response for point in found]), cells))  # by cell, strongest first
    rank = np.empty(len(found), np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(cells[order])) + 1]
    for start, end in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        rank[order[start:end]] = np.arange(end - start)
    responses = np.array([point.response for point in found])
    chosen = np.lexsort((-responses, rank))[:limit]
    return [found[i] for i in chosen]


def normalised_rgb(image: Image.Image, *, size: int = WORK_SIZE) -> Bytes:
    """8-bit RGB array, upright per EXIF, transparency on white, longest side `size`."""
    image = ImageOps.exif_transpose(image)
    if min(image.size) < MIN_SIDE:
        raise UnusableImage(f"Image is {image.width}×{image.height} pixels; photo match needs {MIN_SIDE} or more.")
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        image = _high_depth_to_grey(image)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    rgb = np.asarray(image.convert("RGB"))
    scale = size / max(rgb.shape[:2])
    target = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    resized = cv2.resize(rgb, target, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return np.asarray(resized, np.uint8)


def _high_depth_to_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale to 8 bits (Pillow's own conversion clips instead)."""
    values = np.asarray(image, dtype=np.float64)
    top = float(np.nanmax(values)) if values.size else 0.0
    if image.mode == "F" and top <= 1.0:
        full_scale = 1.0
    elif top <= 255:
        full_scale = 255.0
    else:
        full_scale = 65535.0 if top <= 65535 else top
    grey = np.clip(np.nan_to_num(values) * (255.0 / full_scale), 0, 255).astype(np.uint8)
    return Image.fromarray(grey)


def _colour_histogram(rgb: Bytes, lightness: Bytes) -> Floats:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hue, saturation, value = hsv[:, :, 0], hsv[:, :, 1], hsv[:, :, 2]
    chromatic = (saturation >= 50) & (value >= 40)
    hue_bin = (hue.astype(np.int32) * _HUE_BINS) // 180
    sat_bin = np.minimum((saturation.astype(np.int32) - 50) * _SAT_BINS // 206, _SAT_BINS - 1)
    grey_bin = _HUE_BINS * _SAT_BINS + (lightness.astype(np.int32) * _GREY_BINS) // 256
    bins = np.where(chromatic, hue_bin * _SAT_BINS + np.maximum(sat_bin, 0), grey_bin)
    histogram = np.bincount(bins.ravel(), minlength=COLOUR_BINS).astype(np.float32)
    total = histogram.sum()
    return histogram / total if total else histogram


def colour_similarity(first: Floats, second: Floats) -> float:
    return float(np.sqrt(first * second).sum())


def agreement(query: ImageFeatures, candidate: ImageFeatures) -> Agreement:
    """Match the query's descriptors to the candidate's and count RANSAC homography inliers."""
    colour = colour_similarity(query.colour, candidate.colour)
    if len(query.descriptors) < 2 or len(candidate.descriptors) < 2:
        return Agreement(inliers=0, spread=0.0, colour=colour)
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query.descriptors, candidate.descriptors, k=2)
    good = [pair[0] for pair in pairs if len(pair) == 2 and pair[0].distance < _RATIO * pair[1].distance]
    # One query keypoint per catalog keypoint: a flat, noisy patch (a blown-out highlight, say)
    # yields many look-alike keypoints that would all pile onto one point and fake a "match".
    good = list({match.trainIdx: match for match in sorted(good, key=lambda m: -m.distance)}.values())
    if len(good) < _MIN_INLIERS:
        return Agreement(inliers=0, spread=0.0, colour=colour)
    source = query.keypoints[[match.queryIdx for match in good]]
    target = candidate.keypoints[[match.trainIdx for match in good]]
    homography, mask = cv2.findHomography(
        source, target, cv2.USAC_MAGSAC, _RANSAC_PIXELS, maxIters=2000, confidence=0.995
    )
    if homography is None or mask is None or not _plausible(np.asarray(homography, np.float64)):
        return Agreement(inliers=0, spread=0.0, colour=colour)
    inlier_points = target[mask.ravel().astype(bool)]
    spread = _occupied_cells(inlier_points) / max(1, _occupied_cells(candidate.keypoints))
    return Agreement(inliers=len(inlier_points), spread=min(1.0, spread), colour=colour)


def _plausible(homography: npt.NDArray[np.float64]) -> bool:
    """Rejects mappings no photo of the same object produces: mirrored, collapsed or wildly scaled."""
    determinant = float(np.linalg.det(homography[:2, :2]))
    return 1 / 30 < determinant < 30 and abs(homography[2, 0]) < 0.005 and abs(homography[2, 1]) < 0.005


def _cells(points: Floats, *, size: int = WORK_SIZE) -> npt.NDArray[np.int64]:
    """Index of each point's cell in an 8 × 8 grid over a normalised image of that size."""
    grid = np.clip((points.reshape(-1, 2) * (_GRID / size)).astype(np.int64), 0, _GRID - 1)
    return grid[:, 1] * _GRID + grid[:, 0]


def _occupied_cells(points: Floats) -> int:
    """Grid cells holding at least two of the points."""
    return int((np.bincount(_cells(points), minlength=_GRID * _GRID) >= 2).sum())
