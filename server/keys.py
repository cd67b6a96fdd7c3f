"""Typed keys for what the aiohttp application holds; handlers reach services only through these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .chat.service import ChatService
    from .core import Core
    from .metrics import Metrics
    from .ops.sampler import Sampler
    from .search.service import SearchService
    from .social.avatar import AvatarCache
    from .social.friends import FriendService
    from .social.groups import GroupService
    from .web.static import PackagedFiles

CORE: web.AppKey["Core"] = web.AppKey("core")
CHAT: web.AppKey["ChatService"] = web.AppKey("chat")
METRICS: web.AppKey["Metrics"] = web.AppKey("metrics")
FRIENDS: web.AppKey["FriendService"] = web.AppKey("friends")
GROUPS: web.AppKey["GroupService"] = web.AppKey("groups")
AVATARS: web.AppKey["AvatarCache"] = web.AppKey("group_avatars")
SEARCH: web.AppKey["SearchService"] = web.AppKey("search")
STATIC_FILES: web.AppKey["PackagedFiles"] = web.AppKey("static_files")
SAMPLER: web.AppKey["Sampler"] = web.AppKey("sampler")  # the console dashboard's minute samples
