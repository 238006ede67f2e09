"""Photo match: which catalog products does a shopper's photo show?

Features of catalog images are computed once, when images are stored (`image_features_index`,
called by the loaders and the `index_images` command), and kept in ProductImageFeatures. A query
computes the photo's features only, then

1. shortlists catalog images by voting: each of the photo's ORB descriptors votes for the image
   holding its nearest neighbour among the strongest descriptors of every catalog image;
2. verifies the shortlist (plus the closest colour matches) geometrically — ratio-tested matches
   and a RANSAC homography — and scores each image 0..1 (catalog/imagematch_features.py).

The decoded features stay in memory between queries and are reloaded when the stored set changes.
All of it is blocking CPU and database work: async callers run it in a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from django.db.models import Count, Max, Sum
from PIL import Image

from catalog.imagematch_features import (
    COLOUR_BINS,
    MAX_KEYPOINTS,
    ImageFeatures,
    UnusableImage,
    agreement,
    image_features,
)
from catalog.models import Product, ProductImage, ProductImageFeatures

logger = logging.getLogger(__name__)

FEATURES_VERSION = 1
# In tests on transformed catalog images (crops, rotations, re-compression, lighting) the right
# product scores 0.2-1.0 and at least twice the runner-up, which shares at most a brand logo;
# an unrelated photo scores near 0. So: a likely match scores this much and twice the next one.
LIKELY_MATCH = 0.2
QUERY_KEYPOINTS = 1000  # more than a catalog image keeps: a crop or tilt loses some of them
QUERY_SIZE = 640  # longest side: finer than catalog images' (see image_features)
_VOTING_KEYPOINTS = 100  # per catalog image (x4 for the query): the strongest, spread over the image
_VOTE_DISTANCE = 64  # Hamming bits (of 256) for a vote to count
_VOTE_RATIO = 0.85
_SHORTLIST_BY_VOTES = 8
_SHORTLIST_BY_COLOUR = 3

__all__ = [
    "LIKELY_MATCH",
    "ImageFeatures",
    "IndexSummary",
    "PhotoMatch",
    "UnusableImage",
    "image_features",
    "image_features_index",
    "photo_match",
]


@dataclass(frozen=True)
class PhotoMatch:
    product: Product
    image: ProductImage
    score: float  # 0..1; see LIKELY_MATCH


@dataclass
class IndexSummary:
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0  # file missing or not a readable image; logged


def image_features_index(*, image_ids: Iterable[int] | None = None, force: bool = False) -> IndexSummary:
    """Compute and store photo-match features for catalog images that have a file.

    Args:
        image_ids: ProductImage ids to index; None for every image.
        force: recompute even where the stored features are current (same method, same file).

    Returns:
        Counts of images indexed, left unchanged and failed. Images without a file (only a
        source URL not fetched yet) are ignored; unreadable files are logged and counted, not
        raised, so one bad image does not stop an import.
    """
    images = ProductImage.objects.exclude(image="").select_related("features").order_by("pk")
    if image_ids is not None:
        images = images.filter(pk__in=list(image_ids))
    summary = IndexSummary()
    for product_image in images.iterator(chunk_size=200):
        current = getattr(product_image, "features", None)
        if (
            not force
            and current is not None
            and current.version == FEATURES_VERSION
            and current.source_name == product_image.image.name
        ):
            summary.unchanged += 1
            continue
        try:
            with product_image.image.open("rb") as file, Image.open(file) as picture:
                features = image_features(picture)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            logger.warning("Cannot index image %s (%s): %s", product_image.pk, product_image.image.name, error)
            summary.failed += 1
            continue
        ProductImageFeatures.objects.update_or_create(
            image=product_image,
            defaults={
                "version": FEATURES_VERSION,
                "source_name": product_image.image.name,
                "keypoints": features.keypoints.astype("<f4").tobytes(),
                "descriptors": features.descriptors.tobytes(),
                "colour_histogram": features.colour.astype("<f4").tobytes(),
            },
        )
        summary.indexed += 1
    return summary


def photo_match(image: Image.Image, *, limit: int = 5) -> list[PhotoMatch]:
    """Catalog products that the photo most likely shows, best first, one entry per product.

    Only the photo's features are computed; catalog features come from the stored index. Only
    active products take part. Each entry names the best-matching image of its product (so a
    colourway's image points at its variant) and a score from 0 to 1; products without any
    geometric agreement are left out, so an unrelated photo gives few or no low-scored entries.

    Raises:
        UnusableImage: the photo is too small to describe.
    """
    query = image_features(image, max_keypoints=QUERY_KEYPOINTS, size=QUERY_SIZE)
    index = _catalog_index()
    if not index.image_ids or len(query.descriptors) == 0:
        return []
    best: dict[int, tuple[float, int]] = {}  # product id -> (score, image id)
    for position in index.shortlist(query):
        score = agreement(query, index.features[position]).score
        product_id, image_id = index.product_ids[position], index.image_ids[position]
        if score > 0 and score > best.get(product_id, (0.0, 0))[0]:
            best[product_id] = (score, image_id)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[1][1]))[:limit]
    images = ProductImage.objects.select_related("product").in_bulk([image_id for _, (_, image_id) in ranked])
    return [
        PhotoMatch(product=images[image_id].product, image=images[image_id], score=round(score, 4))
        for _, (score, image_id) in ranked
        if image_id in images
    ]


class _CatalogIndex:
    """Stored features of active products' images, decoded once and stacked for voting."""

    def __init__(self, rows: list[tuple[int, int, bytes, bytes, bytes]]) -> None:
        self.image_ids = [row[0] for row in rows]
        self.product_ids = [row[1] for row in rows]
        self.features = [_decode(keypoints, descriptors, colour) for _, _, keypoints, descriptors, colour in rows]
        voting = [features.descriptors[:_VOTING_KEYPOINTS] for features in self.features]
        self.voters = np.concatenate(voting) if voting else np.zeros((0, 32), np.uint8)
        self.voter_image = np.repeat(np.arange(len(voting)), [len(part) for part in voting])
        self.colours = np.stack([features.colour for features in self.features]) if rows else np.zeros((0, 1))

    def shortlist(self, query: ImageFeatures) -> list[int]:
        """Positions of the catalog images worth verifying: most votes, then closest colours."""
        votes = np.zeros(len(self.image_ids))
        if len(self.voters) >= 2:
            pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(
                query.descriptors[: _VOTING_KEYPOINTS * 4], self.voters, k=2
            )
            for pair in pairs:
                if len(pair) < 2 or pair[0].distance >= _VOTE_DISTANCE:
                    continue
                first, second = (int(self.voter_image[match.trainIdx]) for match in pair)
                # A descriptor as close to two products is no evidence for either (a shared logo,
                # say); as close to two images of one product, it is for that product.
                if (
                    pair[0].distance < _VOTE_RATIO * pair[1].distance
                    or self.product_ids[first] == self.product_ids[second]
                ):
                    votes[first] += 1
        by_votes = [int(i) for i in np.argsort(-votes, kind="stable")[:_SHORTLIST_BY_VOTES] if votes[i] > 0]
        colour = np.sqrt(self.colours * query.colour).sum(axis=1)
        by_colour = [int(i) for i in np.argsort(-colour, kind="stable")[:_SHORTLIST_BY_COLOUR]]
        return list(dict.fromkeys(by_votes + by_colour))


_cache_lock = threading.Lock()
_cache: tuple[tuple[object, ...], _CatalogIndex] | None = None


def _catalog_index() -> _CatalogIndex:
    """The decoded index, rebuilt when the stored features or the set of active products change."""
    global _cache
    stored = ProductImageFeatures.objects.filter(
        version=FEATURES_VERSION, image__product__status=Product.Status.ACTIVE
    ).exclude(image__image="")
    key = tuple(stored.aggregate(count=Count("pk"), changed=Max("updated_at"), ids=Sum("pk")).values())
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    with _cache_lock:
        rows = list(
            stored.order_by("pk").values_list(
                "image_id", "image__product_id", "keypoints", "descriptors", "colour_histogram"
            )
        )
        index = _CatalogIndex([(i, p, bytes(k), bytes(d), bytes(c)) for i, p, k, d, c in rows])
        _cache = (key, index)
    return index


def _decode(keypoints: bytes, descriptors: bytes, colour: bytes) -> ImageFeatures:
    points = np.frombuffer(keypoints, "<f4").astype(np.float32).reshape(-1, 2)
    codes = np.frombuffer(descriptors, np.uint8).reshape(-1, 32)[:MAX_KEYPOINTS]
    histogram = np.frombuffer(colour, "<f4").astype(np.float32)
    if len(histogram) != COLOUR_BINS:
        histogram = np.zeros(COLOUR_BINS, np.float32)
    return ImageFeatures(keypoints=points[: len(codes)], descriptors=codes, colour=histogram)
