"""Group avatars, always PNG: a grid of up to nine tiles, one per member, rendered off the event
loop, or the avatar image the group was given, as a PNG of thumbnail size.

Each tile is the member's initial on a colour derived from their id. Renders are cached by
the members they show, so a group's avatar is drawn again only when its first members change.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections import OrderedDict
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw, ImageFont

SIZE = 256
_GAP = 4
_CACHE_SIZE = 512


def _colour(user_id: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(str(user_id).encode()).digest()
    # Mid-tone colours, so white initials stay readable.
    return (64 + digest[0] % 128, 64 + digest[1] % 128, 64 + digest[2] % 128)


def render_grid(tiles: Sequence[tuple[int, str]]) -> bytes:
    """A PNG of a square grid: 1 tile fills it, up to 4 make 2x2, up to 9 make 3x3."""
    tiles = list(tiles)[:9]
    side = 1 if len(tiles) <= 1 else 2 if len(tiles) <= 4 else 3
    cell = (SIZE - _GAP * (side + 1)) // side
    image = Image.new("RGB", (SIZE, SIZE), (230, 230, 230))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=int(cell * 0.55))
    for index, (user_id, name) in enumerate(tiles):
        row, col = divmod(index, side)
        x0, y0 = _GAP + col * (cell + _GAP), _GAP + row * (cell + _GAP)
        draw.rectangle((x0, y0, x0 + cell, y0 + cell), fill=_colour(user_id))
        initial = (name.strip()[:1] or "?").upper()
        draw.text((x0 + cell / 2, y0 + cell / 2), initial, fill=(255, 255, 255), font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def as_png(image: bytes) -> bytes:
    """An image (a group's avatar thumbnail, small) re-encoded as PNG: the avatar's contract type."""
    with Image.open(io.BytesIO(image)) as source:
        out = io.BytesIO()
        source.save(out, format="PNG", optimize=True)
        return out.getvalue()


class AvatarCache:
    """Rendered group avatars, the least recently used dropped first: grids by the tiles they
    show, avatar images by their content's md5."""

    def __init__(self) -> None:
        self._renders: OrderedDict[tuple[tuple[int, str], ...] | str, bytes] = OrderedDict()

    async def grid(self, tiles: Sequence[tuple[int, str]]) -> bytes:
        key = tuple(tiles[:9])
        return await self._cached(key, lambda: render_grid(key))

    async def png_of(self, md5: str, image: bytes) -> bytes:
        """`image` (of content `md5`) as PNG."""
        return await self._cached(md5, lambda: as_png(image))

    async def _cached(self, key: tuple[tuple[int, str], ...] | str, render: Callable[[], bytes]) -> bytes:
        cached = self._renders.get(key)
        if cached is not None:
            self._renders.move_to_end(key)
            return cached
        png = await asyncio.to_thread(render)
        self._renders[key] = png
        if len(self._renders) > _CACHE_SIZE:
            self._renders.popitem(last=False)
        return png
