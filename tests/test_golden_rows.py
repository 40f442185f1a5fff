"""No refactor changes a number: every algorithm's short runs give the rows recorded before the
ES core was reshaped (tests/golden_rows.py; recorded at commit 3ec02ea on this project's machine)."""

import json

import pytest

from tests.golden_rows import ALGOS, GOLDEN, cases, replay


def test_the_recorded_cases_are_the_cases():
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(cases())


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_runs_give_the_recorded_rows(algo):
    golden = json.loads(GOLDEN.read_text())
    names = [name for name in sorted(cases()) if name.startswith(f"{algo}_")]
    assert names
    rows = replay(names)
    for name in names:
        assert rows[name]["metrics"] == golden[name]["metrics"], name
        assert rows[name]["behaviours"] == golden[name]["behaviours"], name
