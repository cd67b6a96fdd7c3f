"""Reading uploaded images with Pillow: format, dimensions, EXIF orientation, thumbnails.

Everything here is blocking and CPU-bound; the files service runs it in a small thread pool of
its own, never on the event loop. A decompression bomb (more pixels than the configured limit,
checked from the header before anything is decoded) and a corrupt or truncated image are
refused with `ImageRejected`, whose message says which.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

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
    try:
        with Image.open(source) as image:
            return _describe(image, max_pixels, thumb_px)
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


def _describe(image: Image.Image, max_pixels: int, thumb_px: int) -> ImageInfo:
    fmt = image.format or ""
    if fmt not in MIME_OF:
        raise ImageRejected(f"{fmt or 'this'} images are not accepted")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("the image has no pixels")
    if width * height > max_pixels:
        raise ImageRejected(f"the image is {width} x {height} pixels, more than the {max_pixels:,} allowed")
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation
        orientation = 1
    if orientation in _TRANSPOSED:
        width, height = height, width
    # JPEG can decode straight at a fraction of its size: far faster, far less memory.
    image.draft("RGB", (thumb_px, thumb_px))
    image.load()
    upright = ImageOps.exif_transpose(image) or image
    upright.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
    fmt_out, mime_out = thumbnail_format()
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info)
    if fmt_out == "WEBP":
        upright = upright.convert("RGBA" if has_alpha else "RGB")
    else:
        upright = upright.convert("RGB")
    out = io.BytesIO()
    upright.save(out, format=fmt_out, quality=80)
    return ImageInfo(fmt, width, height, out.getvalue(), mime_out)
