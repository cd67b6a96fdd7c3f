"""How long the fuzz tests run: Hypothesis settings from the environment, bounded for CI.

LUCKY_FUZZ_EXAMPLES scales every fuzz test (default 1: the CI budget, about 20 s per backend
for the whole folder on 2 cores); `LUCKY_FUZZ_EXAMPLES=10` runs ten times as many inputs.
Shrinking is off unless LUCKY_FUZZ_SHRINK=1: a failing input is reported as found (its
request or frames are in the assertion), and a shrink against a live server could take
minutes. The example database is off too: the tests leave nothing in the work tree.
bench/fuzz.py is the long run (100,000 frames, 10,000 bodies).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

SCALE = max(1, int(os.environ.get("LUCKY_FUZZ_EXAMPLES", "1") or "1"))
SHRINK = os.environ.get("LUCKY_FUZZ_SHRINK", "") == "1"
PHASES = (Phase.explicit, Phase.generate) + ((Phase.shrink,) if SHRINK else ())

# The served app runs on a thread of its own and may use `random` (retry jitter) while a draw
# is under way, which Hypothesis takes for a strategy using `random`; its warning then builds
# a long description of the strategy, which warns again. Neither is about Lucky.
SERVER_THREAD = [
    pytest.mark.filterwarnings("ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"),
]


def fuzz_settings(examples: int) -> settings:
    """`examples` inputs per run (times LUCKY_FUZZ_EXAMPLES), no deadline, no example database.

    Function-scoped fixtures are shared by every example of a test on purpose: the server, its
    users and their sockets live through the whole run, so that one input's harm to a later
    request is seen.
    """
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        phases=PHASES,
        print_blob=False,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.large_base_example,
                               HealthCheck.filter_too_much],
    )
