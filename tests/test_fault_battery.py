"""The reliability checklist and a battery beyond it: every bad input or fault of
:mod:`fault_battery` ends in a message naming the key or file, never in a traceback, a hang,
a run that ignores the bad value, or lost or duplicated data (each case asserts its own
guarantee; here the message is checked too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_battery import CASES, SkipCase, make_env

pytestmark = pytest.mark.slow  # `make test-slow`: about 3 min of real processes


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    return make_env(Path(tmp_path_factory.mktemp("battery")))


def test_the_battery_is_large_enough():
    assert len(CASES) >= 60
    assert {c.item for c in CASES} >= {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13}
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
