"""SB3 vector environments on processes: :class:`GroupedSubprocVecEnv`.

Used by TRPO (``harness/algos/trpo.py``). SB3's ``SubprocVecEnv`` runs one environment per
process and returns float64 rewards where ``DummyVecEnv`` returns float32, so a run's
numbers would depend on the process count; here ``n`` environments run as contiguous
groups, each a ``DummyVecEnv`` in its own process, and the results are those of one
``DummyVecEnv`` over all of them, whatever the number of processes.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from harness.workers import WorkerError, single_threaded_children


def _group_worker(remote, parent_remote, env_fns: Sequence[Callable]) -> None:
    """Environment process: a ``DummyVecEnv`` over ``env_fns``, driven through ``remote``.

    Replies ``(True, result)``, or ``(False, traceback)`` if a command raised.
    """
    parent_remote.close()
    # the parent handles Ctrl-C and SIGTERM (a scheduler stopping the job's process group) and closes us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    venv = None
    try:
        while True:
            cmd, data = remote.recv()
            try:
                if cmd == "init":
                    venv = DummyVecEnv(list(env_fns))
                    result = (venv.observation_space, venv.action_space)
                elif cmd == "step":
                    venv.step_async(data)
                    result = (*venv.step_wait(), list(venv.reset_infos))
                elif cmd == "reset":
                    # the VecEnv contract: seeds/options are consumed by the next reset
                    venv._seeds, venv._options = list(data[0]), list(data[1])
                    result = (venv.reset(), list(venv.reset_infos))
                elif cmd == "call":
                    method, args, kwargs = data
                    result = getattr(venv, method)(*args, **kwargs)
                elif cmd == "close":
                    if venv is not None:
                        venv.close()
                    remote.send((True, None))
                    return
                else:
                    raise NotImplementedError(f"unknown command {cmd!r}")
                remote.send((True, result))
            except Exception:  # noqa: BLE001 - the command's failure, whatever it is, goes back to the parent
                remote.send((False, traceback.format_exc()))
    except EOFError:  # the parent went away
        if venv is not None:
            venv.close()


def _died(g: int) -> WorkerError:
    return WorkerError(
        f"environment process {g} died (killed, out of memory, or crashed in native code); "
        "the run stops here and what it wrote so far is kept"
    )


class GroupedSubprocVecEnv(VecEnv):
    """``len(env_fns)`` environments in ``n_processes`` spawned processes, contiguous groups,
    each group a ``DummyVecEnv``: the same observations, float32 rewards, dones and infos
    as one ``DummyVecEnv`` over all of them, whatever ``n_processes`` is.

    :param env_fns: picklable environment factories. :param n_processes: 1 to ``len(env_fns)``.
    :raises harness.workers.WorkerError: if an environment process dies.
    :raises RuntimeError: with the remote traceback if a command fails in a process.
    """

    def __init__(self, env_fns: Sequence[Callable], n_processes: int) -> None:
        n = len(env_fns)
        if not 1 <= n_processes <= n:
            raise ValueError(f"n_processes must be in [1, {n}], got {n_processes}")
        bounds = np.linspace(0, n, n_processes + 1).round().astype(int)
        self.groups = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        self._where = [(g, j) for g, r in enumerate(self.groups) for j in range(len(r))]
        ctx = mp.get_context("spawn")
        self.remotes, self.processes, self.closed = [], [], False
        try:
            with single_threaded_children():
                for r in self.groups:
                    remote, work_remote = ctx.Pipe()
                    proc = ctx.Process(
                        target=_group_worker, args=(work_remote, remote, [env_fns[i] for i in r]), daemon=True
                    )
                    proc.start()
                    work_remote.close()
                    self.remotes.append(remote)
                    self.processes.append(proc)
            for g in range(len(self.groups)):  # all processes build their environments in parallel
                self._send(g, ("init", None))
            spaces = [self._recv(g) for g in range(len(self.groups))]
        except BaseException:
            self.close()
            raise
        super().__init__(n, *spaces[0])

    def _send(self, g: int, message: tuple) -> None:
        try:
            self.remotes[g].send(message)
        except (BrokenPipeError, ConnectionError) as exc:
            raise _died(g) from exc

    def _recv(self, g: int):
        try:
            ok, payload = self.remotes[g].recv()
        except (EOFError, ConnectionError) as exc:
            raise _died(g) from exc
        if not ok:
            raise RuntimeError(f"environment process {g} failed:\n{payload}")
        return payload

    def _gather(self) -> list:
        return [self._recv(g) for g in range(len(self.groups))]

    def reset(self):
        """Reset every environment with the seeds and options set since the last reset (each group's
        share sent to its process), then clear them; the observations of all groups concatenated in order.
        ``reset_infos`` holds their infos."""
        for g, r in enumerate(self.groups):
            self._send(g, ("reset", ([self._seeds[i] for i in r], [self._options[i] for i in r])))
        results = self._gather()
        self.reset_infos = [info for _, infos in results for info in infos]
        self._reset_seeds()
        self._reset_options()
        return np.concatenate([obs for obs, _ in results])

    def step_async(self, actions: np.ndarray) -> None:
        """Send each group its contiguous slice of ``actions`` (shape ``(n_envs, ...)``); does not wait."""
        for g, r in enumerate(self.groups):
            self._send(g, ("step", actions[r.start : r.stop]))

    def step_wait(self):
        """Wait for every group's step: ``(obs, rewards, dones, infos)`` concatenated in environment
        order, as one ``DummyVecEnv`` returns them; ``reset_infos`` becomes the groups' own, concatenated."""
        results = self._gather()
        self.reset_infos = [info for *_, infos in results for info in infos]
        obs, rews, dones = (np.concatenate([res[k] for res in results]) for k in range(3))
        return obs, rews, dones, [info for res in results for info in res[3]]

    def close(self) -> None:
        """Ask every process to close its environments, wait up to 10 s for each to exit and kill those
        that do not (they ignore SIGTERM), then close the pipes. Idempotent; a dead process is not an error."""
        if self.closed:
            return
        self.closed = True
        for remote in self.remotes:
            try:
                remote.send(("close", None))
                remote.recv()
            except (EOFError, ConnectionError, BrokenPipeError, OSError):
                pass
        for proc in self.processes:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()  # SIGTERM is ignored by design
        for remote in self.remotes:
            remote.close()

    def _call(self, method: str, indices, *args, **kwargs) -> list:
        out = []
        for i in self._get_indices(indices):
            g, j = self._where[i]
            self._send(g, ("call", (method, args, {**kwargs, "indices": [j]})))
            out.append(self._recv(g))
        return out

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        """The attribute ``attr_name`` of each environment in ``indices`` (default all), one request each."""
        return [v for vs in self._call("get_attr", indices, attr_name) for v in vs]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        """Set the attribute ``attr_name`` to ``value`` on each environment in ``indices`` (default all)."""
        self._call("set_attr", indices, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        """The results of ``method_name(*method_args, **method_kwargs)`` on each environment in ``indices``."""
        return [v for vs in self._call("env_method", indices, method_name, *method_args, **method_kwargs) for v in vs]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        """Whether each environment in ``indices`` is wrapped with ``wrapper_class``."""
        return [v for vs in self._call("env_is_wrapped", indices, wrapper_class) for v in vs]
