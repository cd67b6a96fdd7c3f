"""Building offline push for the composition root: the sender, and the writer's hook that
plans notifications (none when `push.webhook_url` is empty, so the send path is unchanged)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from ..chat.model import ConversationRef
from ..chat.writer import BatchHook
from ..clock import Clock
from ..config import Config
from ..ids import Snowflake
from ..storage import Database
from .deliveries import DeliveryService, WebhookTarget
from .gateway import WebhookClient
from .presence import Presence
from .push import PushPlanner


def offline_push(config: Config, db: Database, clock: Clock, ids: Snowflake, presence: Presence,
                 members: Callable[[ConversationRef], Sequence[int]],
                 extra_targets: Mapping[str, WebhookTarget] | None = None) -> tuple[DeliveryService, list[BatchHook]]:
    """The delivery service (which also sends the deliveries of `extra_targets`' kinds, such
    as SMS codes), and the batch hooks the send writer runs (empty with push off)."""
    deliveries = DeliveryService(db, config.push, clock, random.Random(), WebhookClient(config.push.timeout_s),
                                 extra_targets)
    if not config.push.webhook_url:
        return deliveries, []
    planner = PushPlanner(config.push, config.public_url, ids, presence, members, deliveries.store,
                          on_planned=deliveries.wake)
    return deliveries, [planner]
