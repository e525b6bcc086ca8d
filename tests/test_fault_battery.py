"""The reliability checklist and a battery beyond it: every bad input or fault of
:mod:`fault_battery` and :mod:`fault_battery_untrusted` ends in a message naming the key or
file, never in a traceback, a hang, a run that ignores the bad value, lost or duplicated
data, or a write outside the run or report folder (each case asserts its own guarantee; here
the message is checked too)."""

from __future__ import annotations

from pathlib import Path

import fault_battery
import fault_battery_untrusted
import pytest
from fault_battery import SkipCase, make_env

pytestmark = pytest.mark.slow  # `make test-slow`: about 10 min of real processes

CASES = fault_battery.CASES + fault_battery_untrusted.CASES


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    return make_env(Path(tmp_path_factory.mktemp("battery")))


def test_the_battery_is_large_enough():
    assert len(CASES) >= 120
    assert {c.item for c in CASES} >= {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, *range(14, 21)}
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.item}-{c.id}" for c in CASES])
def test_fault(case, env):
    try:
        message = case.run(env)
    except SkipCase as reason:
        pytest.skip(str(reason))
    assert "Traceback" not in message
    for text in case.expect:
        assert text in message, f"{text!r} not in {message!r}"
