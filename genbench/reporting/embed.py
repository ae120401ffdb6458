"""Pictures inside one HTML file: data URIs, lossless shrinking, thumbnails, a size budget.

* A picture made of k x k blocks (a sample grid upscaled k times with nearest
  neighbour) is embedded at 1/k of its size, which loses nothing: the page shows it k
  times larger with ``image-rendering: pixelated`` (:func:`block_scale`).
* :func:`fit` keeps a page under its size budget: while the pictures' encoded size
  passes it, the largest one is re-encoded at half size (animations also keep every
  other frame). The page says so when it happens; the cells' folders keep the files.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageSequence

SHOWN_WIDTH = 320  # a block-scaled picture is shown at least this wide (an integer multiple of its pixels)
BUDGET = 9_000_000  # bytes of base64 for every picture of a page: with its text, under 10 MB


@dataclass
class Embedded:
    """A picture ready for a page: its bytes, MIME type, natural size and the size to show it at."""

    data: bytes
    mime: str
    width: int
    height: int
    scale: float = 1.0  # shown at width * scale (block-shrunk pictures: k; halved ones: 2)
    pixelated: bool = False
    reduced: int = 0  # times halved to fit the budget

    @property
    def encoded_size(self) -> int:
        return (len(self.data) + 2) // 3 * 4

    def uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def block_scale(img: Image.Image) -> int:
    """The largest k in 4, 3, 2 such that ``img`` is made of k x k blocks of one colour, else 1."""
    if img.mode not in ("L", "RGB", "P"):
        return 1
    array = np.asarray(img)
    for k in (4, 3, 2):
        if array.shape[0] % k or array.shape[1] % k:
            continue
        small = array[::k, ::k]
        if np.array_equal(np.repeat(np.repeat(small, k, 0), k, 1), array):
            return k
    return 1


def picture(data: bytes, mime: str) -> Embedded:
    """A PNG or GIF for a page; a block-scaled PNG is shrunk losslessly."""
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        if mime == "image/png":
            k = block_scale(img)
            if k > 1:
                small = img.resize((width // k, height // k), Image.Resampling.NEAREST)
                shown = max(k, SHOWN_WIDTH // max(1, small.width))  # small pictures (8x8 digits) shown larger
                return Embedded(_png(small), mime, small.width, small.height, float(shown), True)
    if mime == "image/gif" and width < SHOWN_WIDTH:  # animations of 28x28 samples are drawn at 1x
        return Embedded(data, mime, width, height, 2.0, True)
    return Embedded(data, mime, width, height)


def thumbnail(data: bytes, height: int = 64) -> Embedded:
    """A small preview of a sample picture: its top-left corner (a sample grid's first images), ``height`` px."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        k = block_scale(img)
        base = img.resize((img.width // k, img.height // k), Image.Resampling.NEAREST) if k > 1 else img
        if k > 1:  # an upscaled sample grid (8 a row): its first two rows of four
            base = base.crop((0, 0, base.width // 2, base.height // 4 if base.height >= base.width else base.height))
        ratio = height / max(1, base.height)
        size = (max(1, round(base.width * ratio)), height)
        shown = base.resize(size, Image.Resampling.LANCZOS if ratio < 1 else Image.Resampling.NEAREST)
        return Embedded(_png(shown), "image/png", shown.width, shown.height)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def halve(p: Embedded) -> Embedded:
    """``p`` at half its width and height (an animation also drops every other frame, keeping the last)."""
    with Image.open(io.BytesIO(p.data)) as img:
        size = (max(1, img.width // 2), max(1, img.height // 2))
        if p.mime == "image/gif":
            frames = [f.copy() for f in ImageSequence.Iterator(img)]
            durations = [f.info.get("duration", 400) for f in frames]
            keep = sorted({*range(0, len(frames), 2), len(frames) - 1})
            small = [frames[i].convert("RGB").resize(size, Image.Resampling.LANCZOS) for i in keep]
            buf = io.BytesIO()
            small[0].save(buf, format="GIF", save_all=True, append_images=small[1:], loop=0,
                          duration=[durations[i] * 2 if i != keep[-1] else durations[i] for i in keep])  # fmt: skip
            data = buf.getvalue()
        else:
            data = _png(img.resize(size, Image.Resampling.LANCZOS))
    return Embedded(data, p.mime, size[0], size[1], p.scale * 2, False, p.reduced + 1)


def fit(pictures: list[Embedded], fixed: int = 0, budget: int = BUDGET) -> int:
    """Halve the largest pictures (in place) until they and ``fixed`` bytes fit ``budget``; return how many."""
    halved = 0
    while fixed + sum(p.encoded_size for p in pictures) > budget:
        candidates = [p for p in pictures if p.width > 32 and p.reduced < 3]
        if not candidates:
            break
        largest = max(candidates, key=lambda p: p.encoded_size)
        smaller = halve(largest)
        vars(largest).update(vars(smaller))
        halved += 1
    return halved
