"""How fast the harness trains, against a plain Gymnasium loop and raw MuJoCo: ``python -m harness.bench``.

ES's case rests on wall-clock time (issue #9), so this measures, in one run on one machine:

* **limit**: raw ``mujoco.mj_step(model, data, nstep=frame_skip)`` on one core, replaying the
  actions of the plain loop's episodes from the same start states (the physics of the same
  trajectories, with nothing around it but a Python loop; resets not timed);
* **plain**: a single-process ``gymnasium.make(id)`` loop (its default wrappers) with the policy
  written out in NumPy, over the harness's own episodes (the parameters, frozen observation
  normalization and seeds of the last timed epoch of the run with the fewest workers), so that
  both step through the same states; its returns are compared with the harness's;
* **harness**: real ES runs through :class:`harness.runner.Runner` (the shipped config apart
  from the population, the budget and the keys below), for each backend, environment, policy
  and ``workers.n``: training timesteps per second, evaluation excluded and included, in
  total and per worker, and the scaling efficiency ``throughput(n) / (n * throughput(1))``;
* the **coordinator overhead**: the share of an epoch (evaluation excluded, the runner's
  metrics row and checkpoint included) spent outside the backend's ``evaluate``, at
  populations 256 and 1024;
* the **bytes exchanged** with the workers per epoch, against the parameter count (each
  backend's ``bytes_sent``/``bytes_received`` counters: ``process`` counts the pickled messages
  through its worker pipes, ``ray`` what it sends to and gets back from its actors);
* **peak memory**: the coordinator's and each worker's peak RSS (``VmHWM``), and at the end of
  the run their PSS and USS (``/proc/<pid>/smaps_rollup``), which count pages shared between
  processes (e.g. a noise table in shared memory) once and not at all.

The first ``--warmup-epochs`` epochs of each run are not timed. Every harness run is a fresh
process (``--child``), so that its peak memory is its own. A backend that is not available
(not installed, or not in this checkout) is skipped with a note. Results go to
``OUT_DIR/bench.json`` and ``OUT_DIR/bench.md``. No test times anything; ``--quick`` is a
smoke run of every code path in a few seconds (its numbers mean nothing).

Usage: ``python -m harness.bench [--envs HalfCheetah Humanoid] [--policies linear mlp]
[--workers 1 2] [--backends process ray] [--seconds 10] [--overhead-populations 256 1024]
[--quick] [--out-dir results/bench]``

The package: :mod:`~harness.bench.probe` (one harness run in a fresh process, timed through the
trainer's rollout hook and the backend's byte counters), :mod:`~harness.bench.reference` (the plain
loop and raw MuJoCo), :mod:`~harness.bench.memory` (``/proc`` readings), :mod:`~harness.bench.report`
(derived numbers, targets, ``bench.md``) and :mod:`~harness.bench.cli` (the command).
"""
