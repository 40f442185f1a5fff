"""How much of the machine a run had: its own CPU time against wall time, and what else ran.

Wall-clock results are honest only on an idle machine. :class:`MachineUsage` measures one
segment of a run (from start, or from a resume, to the end of that process's part), and
``summary.json`` keeps every segment under ``machine`` (:func:`merge_machine`):

- ``cpu_time_s``: user + system CPU seconds of the run's process and of its child processes
  that have ended (rollout workers, TRPO's environment processes: they are joined before the
  segment ends), from ``resource.getrusage``;
- ``cpu_share``: ``cpu_time_s / (wall_s * cpus)``, the fraction of the machine the run used;
- ``others_cpu_s`` / ``others_share``: CPU seconds every *other* process used meanwhile, from the
  machine's busy time in ``/proc/stat`` minus the run's own (Linux only; ``None`` elsewhere).
  Under ``workers.backend=ray`` Ray's actors are not the run's children, so they count as
  "others": the flag below then says nothing about the machine and is ``None``;
- ``steal_share``: the share of the CPUs the hypervisor took meanwhile (``steal`` in ``/proc/stat``,
  which ``others_cpu_s`` includes, up to the difference between the kernel's tick accounting and
  ``getrusage``): on a virtual machine the host's other guests slow a run too, with no process here
  to show it;
- ``load_avg_start`` / ``load_avg_end``: ``os.getloadavg()`` (1, 5 and 15 minutes) at both ends.
  They are context, not the criterion: a one-minute average still holds the run before it in a
  sweep.
- ``busy``: ``others_share > BUSY_OTHERS_SHARE``, i.e. other processes used more than a tenth of
  the machine while the run ran. The report leaves busy runs out of its wall-clock statistics
  unless asked (``harness.report --include-busy``).
- ``host``: which machine it was (:func:`machine_identity`): the CPU model, its vendor, family, model,
  stepping and the instruction-set flags that set a rollout's speed and rounding (two AMD EPYC
  generations of a cloud both call themselves "AMD EPYC"), the platform and the versions of the
  packages that set the simulation's speed and rounding. Wall time compares only
  between runs on the same kind of machine; a run resumed elsewhere keeps every segment's ``host``,
  and the merged ``host`` is the segments' one if they agree, else ``"mixed"``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import resource
import time


def default_num_workers() -> int:
    """The number of CPUs this process may run on (``workers.n: null`` starts one worker per CPU)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


#: The packages whose versions ``host`` records: they set a rollout's speed and its rounding.
HOST_PACKAGES = ("numpy", "mujoco", "gymnasium", "torch")


#: The CPU flags ``host`` records: the vector and fused multiply-add instructions NumPy, MuJoCo and
#: torch choose their kernels by, hence a rollout's speed and its rounding.
CPU_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512dq",
    "avx512vl",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
)
#: Those of them a machine's label names (the widest vectors and FMA).
LABEL_FLAGS = ("avx2", "fma", "avx512f")


def _cpuinfo(text: str | None = None) -> dict:
    """The first processor's ``/proc/cpuinfo`` fields (``text``: that file's content; ``{}`` where there is none)."""
    if text is None:
        try:
            with open("/proc/cpuinfo") as f:
                text = f.read()
        except OSError:
            return {}
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor only: all are alike
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _cpu_model(info: dict) -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name`` on Linux, else ``platform.processor()``)."""
    return info.get("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_identity(info: dict) -> dict | None:
    """``{"vendor", "family", "model", "stepping", "flags"}`` from ``/proc/cpuinfo`` fields (``flags``: those
    of :data:`CPU_FLAGS` the CPU has); ``None`` without them (not Linux)."""
    if "vendor_id" not in info:
        return None

    def number(key: str) -> int | None:
        try:
            return int(info[key])
        except (KeyError, ValueError):
            return None

    flags = set(info.get("flags", "").split())
    return {
        "vendor": info["vendor_id"],
        "family": number("cpu family"),
        "model": number("model"),
        "stepping": number("stepping"),
        "flags": [f for f in CPU_FLAGS if f in flags],
    }


@functools.cache
def machine_identity() -> dict:
    """Which machine this is, as ``summary.json``'s ``machine.host`` records it.

    :returns: ``{"cpu_model": str, "cpu": cpu_identity(...) or None, "cpus": int, "platform": str,
        "python": str, "packages": {name: version or None}}`` for :data:`HOST_PACKAGES` (``None``: not
        installed). Two runs' wall times compare only if their :func:`machine_label` agree (the report's
        ``machine`` column).
    """
    packages = {}
    for name in HOST_PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    info = _cpuinfo()
    return {
        "cpu_model": _cpu_model(info),
        "cpu": cpu_identity(info),
        "cpus": os.cpu_count() or 1,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": packages,
    }


def machine_label(host: dict | None) -> str | None:
    """A short name for a ``host`` record: the CPU model, its family, model and stepping and the
    :data:`LABEL_FLAGS` it has, and the CPU count, e.g. ``"AMD EPYC (25/1/1; avx2 fma) x2"`` (family/
    model/stepping); ``"AMD EPYC x2"`` for a record from before the family was recorded (the shipped
    runs), ``None`` for a run that did not record a host, ``"mixed"`` for one resumed on another machine."""
    if host == "mixed":
        return "mixed"
    if not isinstance(host, dict) or not host.get("cpu_model"):
        return None
    cpu = host.get("cpu")
    detail = ""
    if isinstance(cpu, dict):
        numbers = "/".join("?" if cpu.get(k) is None else str(cpu[k]) for k in ("family", "model", "stepping"))
        flags = " ".join(f for f in LABEL_FLAGS if f in (cpu.get("flags") or []))
        detail = f" ({numbers}{'; ' + flags if flags else ''})"
    return f"{host['cpu_model']}{detail} x{host.get('cpus', '?')}"


#: Other processes using more than this fraction of all CPUs during a run make it "busy".
BUSY_OTHERS_SHARE = 0.10


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _machine_busy_s() -> tuple[float, float] | None:
    """``(busy, steal)``: CPU seconds since boot of every state but idle and iowait, and of those
    the hypervisor's ``steal`` (time this virtual machine's CPUs were taken away by its host), from
    ``/proc/stat``; ``None`` where there is no ``/proc/stat``."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    ticks = [int(x) for x in fields[1:9]]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    tick = os.sysconf("SC_CLK_TCK")
    return busy / tick, ticks[7] / tick


def _load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class MachineUsage:
    """Measures one segment of a run; :meth:`stop` returns its record (see the module docstring).

    :param workers_n: the run's ``workers.n`` (recorded beside the shares).
    :param backend: the run's ``workers.backend``; ``ray`` makes ``busy`` ``None``.
    """

    def __init__(self, workers_n: int | None, backend: str | None = None) -> None:
        self.workers_n, self.backend = workers_n, backend
        self.cpus = os.cpu_count() or 1
        self.load_start = _load_avg()
        self.t0 = time.perf_counter()
        self.own0 = _own_cpu_s()
        self.machine0 = _machine_busy_s()

    def stop(self) -> dict:
        """The segment's record; call it after the run's child processes have been joined."""
        wall = max(time.perf_counter() - self.t0, 1e-9)
        own = _own_cpu_s() - self.own0
        machine1 = _machine_busy_s()
        known = self.machine0 is not None and machine1 is not None
        others = max(machine1[0] - self.machine0[0] - own, 0.0) if known else None
        steal = max(machine1[1] - self.machine0[1], 0.0) if known else None
        others_share = None if others is None else others / (wall * self.cpus)
        busy = None if others_share is None or self.backend == "ray" else bool(others_share > BUSY_OTHERS_SHARE)
        return {
            "wall_s": round(wall, 3),
            "cpus": self.cpus,
            "workers_n": self.workers_n,
            "cpu_time_s": round(own, 3),
            "cpu_share": round(own / (wall * self.cpus), 4),
            "others_cpu_s": None if others is None else round(others, 3),
            "others_share": None if others_share is None else round(others_share, 4),
            "steal_share": None if steal is None else round(steal / (wall * self.cpus), 4),
            "load_avg_start": self.load_start,
            "load_avg_end": _load_avg(),
            "busy": busy,
            "host": machine_identity(),
        }


def merge_machine(previous: dict | None, segment: dict) -> dict:
    """``summary.json``'s ``machine`` after one more segment: every segment in ``segments``, the
    totals of CPU and wall seconds, and ``busy`` true if any segment was busy (``None`` if no
    segment could tell)."""
    segments = [*(previous or {}).get("segments", []), segment]
    flags = [s["busy"] for s in segments if s.get("busy") is not None]
    wall = max(sum(s["wall_s"] for s in segments), 1e-9)  # a segment of under a millisecond rounds to 0
    cpu = sum(s["cpu_time_s"] for s in segments)
    others = [s["others_cpu_s"] for s in segments]
    # steal as a share of each segment's CPUs, weighted by its wall time (older segments did not record it)
    steals = [None if s.get("steal_share") is None else s["steal_share"] * s["wall_s"] for s in segments]
    cpus = segment["cpus"]
    hosts = [s.get("host") for s in segments]
    host = hosts[-1] if all(h == hosts[-1] for h in hosts) else "mixed"  # an older segment has none
    return {
        "busy": any(flags) if flags else None,
        "cpus": cpus,
        "workers_n": segment["workers_n"],
        "wall_s": round(wall, 3),
        "cpu_time_s": round(cpu, 3),
        "cpu_share": round(cpu / (wall * cpus), 4),
        "others_share": None if None in others else round(sum(others) / (wall * cpus), 4),
        "steal_share": None if None in steals else round(sum(steals) / wall, 4),
        "load_avg_start": segments[0]["load_avg_start"],
        "load_avg_end": segment["load_avg_end"],
        "host": host,
        "segments": segments,
    }
