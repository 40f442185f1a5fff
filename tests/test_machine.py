"""harness/machine.py: a run's share of the machine, and the busy flag."""

import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest

from harness.machine import BUSY_OTHERS_SHARE, MachineUsage, merge_machine


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.slow
def test_own_work_counts_as_the_runs_and_a_joined_child_too():
    usage = MachineUsage(workers_n=1, backend="process")
    _spin(0.3)
    child = mp.get_context("spawn").Process(target=_spin, args=(0.3,))
    child.start()
    child.join()
    seg = usage.stop()
    # the parent's 0.3 s and the child's 0.3 s (plus the child's start-up) are the run's own
    assert seg["cpu_time_s"] >= 0.5
    assert seg["cpu_share"] == pytest.approx(seg["cpu_time_s"] / (seg["wall_s"] * seg["cpus"]), rel=1e-3)
    assert seg["load_avg_start"] is not None and len(seg["load_avg_end"]) == 3


@pytest.mark.slow
def test_another_process_spinning_meanwhile_makes_the_run_busy():
    other = mp.get_context("spawn").Process(target=_spin, args=(3.0,))
    other.start()  # not joined before stop(): its time belongs to "others"
    time.sleep(0.5)
    usage = MachineUsage(workers_n=1, backend="process")
    time.sleep(1.0)
    seg = usage.stop()
    other.join()
    # one core of the machine spun the whole time: others used at least 1 / cpus of it
    assert seg["others_share"] >= min(0.8 / seg["cpus"], 0.4) > BUSY_OTHERS_SHARE
    assert seg["busy"] is True
    assert MachineUsage(1, backend="ray").stop()["busy"] is None  # Ray's actors are not the run's children


@pytest.mark.slow
def test_segments_merge_and_one_busy_segment_marks_the_run():
    a = {
        "wall_s": 10.0,
        "cpus": 2,
        "workers_n": 2,
        "cpu_time_s": 18.0,
        "cpu_share": 0.9,
        "others_cpu_s": 0.5,
        "others_share": 0.025,
        "load_avg_start": [0.1, 0.1, 0.1],
        "load_avg_end": [1.8, 1.0, 0.5],
        "busy": False,
    }
    b = dict(a, others_cpu_s=6.0, others_share=0.3, busy=True, load_avg_end=[3.0, 2.0, 1.0])
    one = merge_machine(None, a)
    assert one["busy"] is False and one["segments"] == [a]
    both = merge_machine(one, b)
    assert both["busy"] is True and both["wall_s"] == 20.0 and both["cpu_time_s"] == 36.0
    assert both["others_share"] == pytest.approx(6.5 / 40)
    assert both["load_avg_start"] == a["load_avg_start"] and both["load_avg_end"] == b["load_avg_end"]
    assert both["steal_share"] is None  # these segments predate steal_share: not invented
    c = dict(a, steal_share=0.02)
    d = dict(b, steal_share=0.06)
    assert merge_machine(merge_machine(None, c), d)["steal_share"] == pytest.approx(0.04)


def test_a_segment_records_the_hypervisors_steal_apart():
    seg = MachineUsage(workers_n=1, backend="process").stop()
    assert seg["steal_share"] is not None and 0.0 <= seg["steal_share"] <= max(seg["others_share"], 0.0) + 1e-3


def test_a_segment_names_its_machine_and_a_resume_elsewhere_is_mixed():
    from harness.machine import machine_identity, machine_label

    seg = MachineUsage(workers_n=1, backend="process").stop()
    host = seg["host"]
    assert host == machine_identity() and host["cpus"] >= 1 and host["cpu_model"]
    assert host["packages"]["numpy"] == np.__version__ and host["packages"]["mujoco"] is not None
    assert merge_machine(None, seg)["host"] == host
    other = dict(seg, host=dict(host, cpu_model="another CPU"))
    assert merge_machine(merge_machine(None, seg), other)["host"] == "mixed"
    assert machine_label(host).startswith(host["cpu_model"]) and machine_label(host).endswith(f" x{host['cpus']}")
    assert machine_label(None) is None and machine_label("mixed") == "mixed"


def test_two_cpus_of_one_model_name_are_two_machines_and_the_shipped_runs_group_as_before():
    import json

    from harness.machine import cpu_identity, machine_identity, machine_label
    from tests.conftest import ROOT

    # two cloud machines whose CPUs both call themselves "AMD EPYC": Milan (family 25) and Rome (family 23)
    def cpuinfo(family, model, flags):
        return {
            "vendor_id": "AuthenticAMD",
            "cpu family": str(family),
            "model": str(model),
            "model name": "AMD EPYC",
            "stepping": "1",
            "flags": f"fpu sse4_2 avx {flags} sha_ni",
        }

    milan, rome = cpu_identity(cpuinfo(25, 1, "avx2 fma")), cpu_identity(cpuinfo(23, 49, "avx2 fma"))
    assert milan == {
        "vendor": "AuthenticAMD",
        "family": 25,
        "model": 1,
        "stepping": 1,
        "flags": ["sse4_2", "avx", "avx2", "fma"],
    }
    hosts = [{"cpu_model": "AMD EPYC", "cpu": cpu, "cpus": 2} for cpu in (milan, rome)]
    assert machine_label(hosts[0]) == "AMD EPYC (25/1/1; avx2 fma) x2" != machine_label(hosts[1])
    assert cpu_identity({"model name": "Apple M2"}) is None  # no /proc/cpuinfo fields: no family to tell
    here = machine_identity()
    if Path("/proc/cpuinfo").is_file():
        assert here["cpu"]["vendor"] and here["cpu"]["family"] is not None
    # the shipped runs recorded no family: their label, the report's machine column, is what it was
    shipped = [
        json.loads(p.read_text()).get("machine", {}).get("host") for p in (ROOT / "results").rglob("summary.json")
    ]
    shipped = [h for h in shipped if isinstance(h, dict) and "cpu" not in h]  # runs shipped since record it
    assert shipped and all(machine_label(h) == f"{h['cpu_model']} x{h['cpus']}" for h in shipped)
