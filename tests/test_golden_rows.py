"""No refactor changes a number: every algorithm's short runs give the rows recorded before the
ES core was reshaped (tests/golden_rows.py; the ES family recorded at commit 3ec02ea, TRPO at b554f9c).

The ES family's rows (NumPy float64, MuJoCo) came out identical on the two CPUs this project has run
on (an Intel Xeon and an AMD EPYC), so they are compared exactly everywhere. TRPO's float32 PyTorch
kernels round differently on another CPU (up to 15% apart in ``eval_return_std`` after two epochs), so
its rows are compared exactly only on the CPU that recorded them (``tests/data/golden_rows_host.json``);
elsewhere its counts are compared exactly and its floats only to their magnitude.
"""

import json

import pytest

from harness.machine import machine_identity
from tests.golden_rows import ALGOS, GOLDEN, HOST, cases, replay

COUNTS = ("epoch", "timesteps", "episodes")


def test_the_recorded_cases_are_the_cases():
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(cases())


def _same_cpu_as_recorded(algo: str) -> bool:
    recorded = json.loads(HOST.read_text()).get(algo)
    here = machine_identity()
    return recorded is None or (recorded["cpu_model"], recorded["cpus"]) == (here["cpu_model"], here["cpus"])


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_runs_give_the_recorded_rows(algo):
    golden = json.loads(GOLDEN.read_text())
    names = [name for name in sorted(cases()) if name.startswith(f"{algo}_")]
    assert names
    rows = replay(names)
    exact = _same_cpu_as_recorded(algo)
    for name in names:
        if exact:
            assert rows[name]["metrics"] == golden[name]["metrics"], name
        else:  # another CPU's float32 kernels: the same rows and counts, floats of the same magnitude
            assert len(rows[name]["metrics"]) == len(golden[name]["metrics"]), name
            for got, want in zip(rows[name]["metrics"], golden[name]["metrics"]):
                assert got.keys() == want.keys(), name
                for key in want:
                    if key in COUNTS or want[key] == "":
                        assert got[key] == want[key], (name, key)
                    else:
                        assert float(got[key]) == pytest.approx(float(want[key]), rel=0.25, abs=1e-3), (name, key)
        assert rows[name]["behaviours"] == golden[name]["behaviours"], name
