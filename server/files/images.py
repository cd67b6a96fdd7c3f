"""Reading uploaded images with Pillow: format, dimensions, EXIF orientation, thumbnails,
avatars.

The functions are blocking and CPU-bound; the files service runs them through an `ImageWorker`
(a small thread pool of its own, and one large decode at a time), never on the event loop. A
decompression bomb (more pixels than the configured limit, checked from the header before
anything is decoded) and a corrupt or truncated image are refused with `ImageRejected`, whose
message says which.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TypeVar

from PIL import Image, ImageOps, UnidentifiedImageError, features

# Formats recognised by their first bytes, and the MIME type served for each.
MIME_OF = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
IMAGE_MIMES = frozenset(MIME_OF.values())
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # orientations that swap width and height
AVATAR_PX = 512  # side of an avatar image made from an upload (smaller sources stay smaller)
# Images past this many pixels decode one at a time (a non-JPEG decodes whole, at 4 bytes a
# pixel: 64 MB here, 160 MB at the default `files.image_max_pixels` of 40 MP). A 12 MP phone
# photo stays under it and is never queued behind a large one.
LARGE_DECODE_PIXELS = 16_000_000
T = TypeVar("T")


class ImageRejected(Exception):
    """The bytes claim to be an image but cannot be one this server will read."""


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's name: PNG, JPEG...
    width: int  # as displayed, after the EXIF orientation
    height: int
    thumbnail: bytes
    thumbnail_mime: str


def sniff(head: bytes) -> str | None:
    """The image format the first bytes announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM") and len(head) >= 14:
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    return None


def thumbnail_format() -> tuple[str, str]:
    """(Pillow format, MIME type) of thumbnails: WebP where Pillow has it, else JPEG."""
    return ("WEBP", "image/webp") if features.check("webp") else ("JPEG", "image/jpeg")


def analyze(source: str | IO[bytes], max_pixels: int, thumb_px: int) -> ImageInfo:
    """Check an image fully (by decoding it into its thumbnail) and describe it."""
    return _decoding(source, max_pixels, lambda image: _describe(image, max_pixels, thumb_px))


def avatar(source: str | IO[bytes], max_pixels: int) -> tuple[bytes, str]:
    """A new avatar image made from an image, and its MIME type: the centre square of the
    upright picture, at most `AVATAR_PX` a side, re-encoded (PNG where it has transparency,
    else JPEG) with none of the source's metadata (EXIF, location, comments)."""
    return _decoding(source, max_pixels, lambda image: _avatar(image, max_pixels))


def pixels(source: IO[bytes]) -> int:
    """Width times height, from the header alone; 0 if it cannot be read (decoding says why)."""
    try:
        with Image.open(source) as image:
            width, height = image.size
            return width * height
    except Exception:  # noqa: BLE001 - the decode that follows refuses it with the reason
        return 0
    finally:
        source.seek(0)


def _decoding(source: str | IO[bytes], max_pixels: int, work: Callable[[Image.Image], T]) -> T:
    """Open an image and run `work` on it; every way it can fail becomes `ImageRejected`."""
    try:
        with Image.open(source) as image:
            return work(image)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own limit (above ours): an error past twice it, a warning past it, which
        # is raised where warnings are errors and otherwise only logged (ours still applies).
        raise ImageRejected(f"the image has more than {max_pixels:,} pixels (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageRejected("the file is not an image this server can read") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        # Truncated data, bad chunks, broken headers: Pillow says which in its message.
        raise ImageRejected(f"the image is corrupt or truncated ({str(exc).strip() or type(exc).__name__})") from None


def _check(image: Image.Image, max_pixels: int) -> str:
    """The image's format, if it is one we read and within the pixel limit."""
    fmt = image.format or ""
    if fmt not in MIME_OF:
        raise ImageRejected(f"{fmt or 'this'} images are not accepted")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("the image has no pixels")
    if width * height > max_pixels:
        raise ImageRejected(f"the image is {width} x {height} pixels, more than the {max_pixels:,} allowed")
    return fmt


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation
        return 1


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _describe(image: Image.Image, max_pixels: int, thumb_px: int) -> ImageInfo:
    fmt = _check(image, max_pixels)
    width, height = image.size
    orientation = _orientation(image)
    if orientation in _TRANSPOSED:
        width, height = height, width
    # JPEG can decode straight at a fraction of its size: far faster, far less memory. Other
    # formats decode whole (4 bytes a pixel: 160 MB at 40 MP), so the thumbnail is made in
    # place, by `reduce` then a resize, and only the small result is turned upright: turning
    # the full image first copied it (a 40 MP PNG peaked at +309 MB, now +160 MB).
    image.draft("RGB", (thumb_px, thumb_px))
    image.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS, reducing_gap=2.0)
    image.load()  # a small image is left as it is by `thumbnail`: decode it (and check it) here
    upright = ImageOps.exif_transpose(image) or image
    fmt_out, mime_out = thumbnail_format()
    has_alpha = _has_alpha(upright)
    if fmt_out == "WEBP":
        upright = upright.convert("RGBA" if has_alpha else "RGB")
    else:
        upright = upright.convert("RGB")
    out = io.BytesIO()
    upright.save(out, format=fmt_out, quality=80)
    return ImageInfo(fmt, width, height, out.getvalue(), mime_out)


def _avatar(image: Image.Image, max_pixels: int) -> tuple[bytes, str]:
    _check(image, max_pixels)
    _orientation(image)  # read (and kept) before the pixels are replaced below
    width, height = image.size
    short = min(width, height)
    image.draft("RGB", (AVATAR_PX, AVATAR_PX))
    if short > AVATAR_PX:
        # Shrink in place first (reduce, then resize), keeping the short side at AVATAR_PX,
        # so that turning and cropping work on a small picture.
        scale = AVATAR_PX / short
        image.thumbnail((max(AVATAR_PX, round(width * scale)), max(AVATAR_PX, round(height * scale))),
                        Image.Resampling.LANCZOS, reducing_gap=2.0)
    else:
        image.load()
    upright = ImageOps.exif_transpose(image) or image
    side = min(upright.size)
    square = ImageOps.fit(upright, (side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if _has_alpha(square):
        square.convert("RGBA").save(out, format="PNG", optimize=True)
        return out.getvalue(), "image/png"
    square.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue(), "image/jpeg"


class ImageWorker:
    """Runs the blocking work above off the event loop: in a small thread pool of its own (so
    a burst of photos cannot take the default executor's threads), and an image past
    `LARGE_DECODE_PIXELS` only when no other large one is being decoded (so two cannot take
    their memory at once)."""

    def __init__(self, threads: int = 2) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="images")
        self._large = asyncio.Semaphore(1)

    async def run(self, work: Callable[[IO[bytes]], T], source: IO[bytes]) -> T:
        """`work(source)` in the pool; `source` is read from its start."""
        loop = asyncio.get_running_loop()
        source.seek(0)
        if await loop.run_in_executor(self._pool, pixels, source) <= LARGE_DECODE_PIXELS:
            return await loop.run_in_executor(self._pool, work, source)
        async with self._large:
            return await loop.run_in_executor(self._pool, work, source)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
