"""Random frames from one user's socket while two others talk, on both databases.

The fuzzing user (ann) sends batches of frames: frames that look valid with values of the
wrong type, ids and seqs of 2^64, bodies nested a thousand levels, unknown types, binary
frames, text that is not JSON, now and then one over 64 KiB or 20 bad ones in a row. Ann
shares a conversation with bob and a group with bob and cat, and her frames point at real
users, conversations and messages half the time. After each batch:

- every frame ann got is an object with a `type`, errors carry a code of the contract, and a
  reply carries an id ann sent; her socket is open, or was closed with 1008 (after 20 bad
  frames, each answered with an error frame) or 1009 (after a frame over 64 KiB);
- bob's message to cat gets `sent` and reaches cat; neither socket closes;
- `/healthz` answers, and every user still reads the conversations ann can write to.

At the end every user reads every conversation over HTTP and through `sync` from nothing.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from .budget import SERVER_THREAD, fuzz_settings
from .readback import assert_readable
from .sockets import Sockets, shared_conversations, talk, targets
from .strategies import bad_runs, huge_frames, wire_frames
from .world import World

pytestmark = SERVER_THREAD

BATCHES = 120  # per backend, times LUCKY_FUZZ_EXAMPLES


def test_random_frames_leave_everyone_else_untouched(world: World) -> None:
    app = world.app
    sockets = Sockets(world)
    app.run(sockets.open())
    shared = shared_conversations(world)
    frame_list = st.lists(wire_frames(targets(world)), min_size=1, max_size=12)
    synced: dict[str, int] = {}

    @fuzz_settings(BATCHES)
    @given(data=st.data())
    def one_batch(data: st.DataObject) -> None:
        frames = data.draw(frame_list, label="frames")
        extra = data.draw(st.integers(0, 24), label="and then")
        if extra == 0:
            frames.append(data.draw(huge_frames(), label="oversized"))
        elif extra == 1:
            frames += data.draw(bad_runs(), label="bad in a row")
        assert sockets.fuzzer is not None and sockets.bob is not None and sockets.cat is not None
        app.run(sockets.fuzzer.batch(frames))
        what = f"after {frames}"
        app.run(talk(sockets.bob, sockets.cat, world.users["cat"], what))
        status, body = app.call("GET", "/healthz")
        assert status == 200, f"{what}: /healthz -> {status} {body}"
        assert_readable(world, shared, newest_only=True)

    try:
        one_batch()
        for name in ("ann", "bob", "cat"):
            synced[name] = app.run(sockets.sync_all(name))
        assert_readable(world)
    finally:
        if sockets.fuzzer is not None:
            print("fuzzer's replies:", sockets.fuzzer.replies, "closes:", sockets.fuzzer.closes, "synced:", synced)
        app.run(sockets.close())
