"""``python -m harness.report.paper`` (``make figures``) on a partial results tree, and ``make figures-novelty``'s
fallback to results/paper.

Every run here is SYNTHETIC (:func:`tests.test_report_clock.write_run`: the runner's files with made-up numbers).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_report_clock import rows_of, write_run

# ----------------------------------------------------------------------------- the paper figures


def paper_tree(root: Path) -> Path:
    """results/paper with table1_mujoco (InvertedPendulum: es and trpo, 2 seeds each, es at 2x TRPO's timesteps
    to every threshold; Swimmer: es only; every other task of Table 1 missing) and landscape_toy (one ES and one
    VO run on toy_1d); deceptive_point_maze missing."""
    t1 = root / "table1_mujoco"
    for s in (0, 1):
        write_run(t1 / f"trpo_InvertedPendulum_seed{s}", "trpo", s, rows_of(1000, 100, 1e-3 * (1 + 0.1 * s), 1.0, 0.5))
        write_run(
            t1 / f"es_InvertedPendulum_seed{s}",
            "es",
            s,
            rows_of(2000, 100, 5e-4 * (1 + 0.1 * s), 0.05, 0.5),
            busy=s == 1,
            others=0.3,
        )
        write_run(t1 / f"es_Swimmer_seed{s}", "es", s, rows_of(2000, 50, 1e-4, 0.05, 0.5), env="Swimmer")
    toy = root / "landscape_toy"
    from harness.envs.landscapes import get_landscape

    L = get_landscape("toy_1d")
    for algo, sigma in (("es", 0.05), ("vo", 1.0)):
        mus = np.linspace(-1.5, -1.5 if algo == "es" else 2.0, 20)
        rows = []
        for e, mu in enumerate(mus, start=1):
            loss = float(L.loss(np.array([[mu]]))[0])
            rows.append(
                {
                    "epoch": e,
                    "timesteps": 50 * e,
                    "episodes": 50 * e,
                    "wall_time_s": 0.01 * e,
                    "train_time_s": 0.009 * e,
                    "eval_time_s": 0.001 * e,
                    "return_mean": -loss,
                    "return_max": -loss,
                    "eval_return": -loss,
                    **({"sigma_mean": sigma * 0.8**e} if algo == "vo" else {}),
                }
            )
        run = write_run(
            toy / f"{algo}_toy_1d_seed0",
            algo,
            0,
            rows,
            env="toy_1d",
            busy=True,
            extra={"env_id": "toy_1d", "env": {"init": [-1.5]}, "algo": {"sigma": sigma}},
        )
        (run / "behaviours.csv").write_text(
            "epoch,timesteps,source,agent,episode,bc_0\n"
            + "".join(f"{e},{50 * e},eval,,0,{float(mu)!r}\n" for e, mu in enumerate(mus, start=1))
        )
    (root / "README.md").write_text("the paper's runs\n")
    return root


@pytest.mark.slow
def test_paper_figures_from_a_partial_results_tree(tmp_path, capsys):
    from PIL import Image

    from harness.report import paper

    results, out = paper_tree(tmp_path / "results" / "paper"), tmp_path / "figures"
    assert paper.main(["--results", str(results), "--out", str(out), "--reps", "50"]) == 0
    assert capsys.readouterr().out.startswith(f"paper: {out / 'README.md'} (")
    index = (out / "README.md").read_text()
    # what was missing: a whole part, four of the six tasks, TRPO on Swimmer
    assert "`deceptive_point_maze`: " in index.split("## Missing")[1].split("##")[0]
    for env in ("HalfCheetah", "Hopper", "InvertedDoublePendulum", "Walker2d"):
        assert f"`table1_mujoco`: no run on {env}." in index
    assert "`table1_mujoco`: on Swimmer no run of trpo seeds 0, 1." in index
    # every figure and table it names exists; figures are at a paper's widths, single or double column
    links = re.findall(r"\]\(([^)]+\.(?:png|pdf|md|csv))\)", index)
    assert links and all((out / link).is_file() for link in links), [lk for lk in links if not (out / lk).is_file()]
    pngs = [link for link in links if link.endswith(".png")]
    for stem in (
        "tradeoff_all",
        "curves_timesteps_all",
        "curves_train_time_s_all",
        "table1_mujoco/curves_InvertedPendulum",
        "table1_mujoco/tradeoff_InvertedPendulum",
        "landscape/toy_1d_smoothed",
        "landscape/toy_2d_smoothed",
        "landscape/toy_1d_sweep_es_vs_vo",
        "landscape/toy_1d_sweep_vo_plane",
    ):
        assert f"{stem}.png" in pngs, stem
        assert (out / f"{stem}.pdf").stat().st_size > 1000
    for link in pngs:
        with Image.open(out / link) as im:
            width = im.size[0] / 300
        assert abs(width - 7.0) < 0.05 or abs(width - 3.5) < 0.05, (link, width)
        assert re.search(re.escape(f"[PDF]({link[:-4]}.pdf), ") + r"(7\.0|3\.5) x [0-9.]+ in\.", index), link
    # the Table 1 comparison: the paper's value beside ours (es needs 2x trpo's timesteps at every fraction)
    t1 = pd.read_csv(out / "table1_vs_salimans.csv")
    ip = t1[(t1["env"] == "InvertedPendulum") & (t1["algo"] == "es")].set_index("fraction")
    assert list(ip["salimans_es_trpo"]) == [0.28, 0.52, 0.78, 0.88]
    np.testing.assert_allclose(ip["ratio"].loc[[0.25, 0.5, 0.75]], 2.0)
    assert math.isnan(ip.loc[1.0, "ratio"])  # one trpo seed of two never reaches trpo's mean final return
    md = (out / "table1_vs_salimans.md").read_text()
    assert "| InvertedPendulum | 50% | 0.52 | 2 [" in md
    assert "| Swimmer | 25% | 0.56 | – (no TRPO run) |" in md
    assert "| HalfCheetah | 25% | 0.15 | – (no run) |" in md
    assert "Evaluation resolution, median training steps between consecutive evaluations" in md
    assert "| InvertedPendulum | 2000 | 1000 |" in md  # es, trpo
    assert "training wall-clock time (evaluation excluded)" in md
    assert "†" not in md  # every run on one (unrecorded) machine
    final = (out / "final_returns.md").read_text()
    assert "(2 runs at 200k steps)" in final and "(2 runs at 100k steps)" in final
    # the busy es run: listed in the table1 report, left out of its wall clock only
    assert "1 run of table1_mujoco ran on a busy machine" in index
    assert "- `es_InvertedPendulum_seed1`: other processes 30%" in (out / "table1_mujoco" / "report.md").read_text()
    # which of a figure or a table reads better is said
    assert index.count("*Figure") >= 5 and "*Table: ratios with CIs" in index
    # the sweep's runs, read from their folders
    assert "VO, σ from 1 (learned): 1 of 1 seeds end in the well" in index
    assert "ES, σ = 0.05: 0 of 1 seeds end in the well" in index

    # a part disappears: its files go, the index says it is missing, nothing else in out is touched
    assert "| InvertedPendulum | 100% | 0.88 | – (1/2 vs 1/2 reached) |" in md
    (out / "mine.txt").write_text("kept")
    import shutil

    shutil.rmtree(results / "landscape_toy")
    assert paper.main(["--results", str(results), "--out", str(out), "--reps", "50"]) == 0
    index = (out / "README.md").read_text()
    assert "`landscape_toy`: " in index.split("## Missing")[1].split("##")[0]
    assert not (out / "landscape" / "toy_1d_sweep_es_vs_vo.png").exists()
    assert (out / "landscape" / "toy_1d_smoothed.png").exists() and (out / "mine.txt").read_text() == "kept"


@pytest.mark.slow
def test_a_partial_tree_names_a_deleted_metrics_csv_and_the_console_lists_what_is_missing(tmp_path, capsys, caplog):
    from harness.report import paper

    results, out = paper_tree(tmp_path / "results" / "paper"), tmp_path / "figures"
    (results / "table1_mujoco" / "es_Swimmer_seed1" / "metrics.csv").unlink()  # its summary.json says completed
    with caplog.at_level("WARNING", "harness.report.load"):
        assert paper.main(["--results", str(results), "--out", str(out), "--reps", "50"]) == 0
    skipped = [r.getMessage() for r in caplog.records if "es_Swimmer_seed1" in r.getMessage()]
    assert skipped and all("metrics.csv was deleted or moved" in m and "first epoch" not in m for m in skipped)
    printed = capsys.readouterr().out.splitlines()
    index = (out / "README.md").read_text()
    missing = [
        line[2:] for line in index.split("## Missing")[1].split("\n## ")[0].splitlines() if line.startswith("- ")
    ]
    assert len(missing) >= 6 and printed[1:] == [f"  missing: {m}" for m in missing]  # each part, not a count
    assert any("`deceptive_point_maze`" in line for line in printed)
    assert "5 runs read from" in index  # table1_mujoco's count, from the folders that hold a run


def test_the_readme_leaves_the_counts_of_shipped_runs_to_the_index_make_figures_writes():
    """Counts written by hand (72 Table 1 runs, one maze run) went stale as the tree changed (66, 20); the index
    counts the folders each time."""
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Paper figures")[1].split("\n## ")[0]
    counts = re.findall(r"\b(?:\d+|one|two|three|four|five|six)\b[^.;,()]{0,30}\bruns?\b", section)
    assert not counts, counts
    assert "results/figures/paper/README.md" in section


@pytest.mark.slow
def test_paper_figures_of_an_absent_or_empty_results_folder_is_one_error_line(tmp_path, capsys):
    from harness.report import paper

    assert paper.main(["--results", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'absent'} does not exist")
    (tmp_path / "empty" / "table1_mujoco").mkdir(parents=True)
    (tmp_path / "empty" / "README.md").write_text("nothing yet\n")
    assert paper.main(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no run folder" in err[0]
    assert not (tmp_path / "out").exists()


def test_make_figures_targets():
    from tests.conftest import ROOT

    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    assert {"figures", "figures-novelty", "figures-landscape"} <= set(phony)
    assert re.search(r"^figures: \$\(STAMP\)  ## ", makefile, re.M)  # listed by make help
    assert "-m harness.report.paper --results $(RESULTS)/paper --out $(RESULTS)/figures/paper" in makefile
    assert (
        "-m harness.report.behaviours $(RESULTS)/deceptive_point_maze $(RESULTS)/paper/deceptive_point_maze" in makefile
    )
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "!/results/paper/" in ignore
    for bulk in ("wandb/", "checkpoint/", "*.npz", "*.zip", "*.pkl", "harness.log"):
        assert f"/results/paper/**/{bulk}" in ignore, bulk


@pytest.mark.slow
def test_figures_novelty_falls_back_to_the_paper_folder(tmp_path, capsys):
    from harness.report import behaviours

    paper_maze = tmp_path / "paper" / "deceptive_point_maze"
    run = write_run(paper_maze / "ns_es_seed0", "ns_es", 0, rows_of(1000, 3, 1e-3, 0.1, 0.1), env="Swimmer")
    (run / "behaviours.csv").write_text("epoch,timesteps,source,agent,episode,bc_0\n1,1000,archive,0,,0.5\n")
    out = tmp_path / "novelty"
    assert behaviours.main([str(tmp_path / "deceptive_point_maze"), str(paper_maze), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'deceptive_point_maze'} does not exist: using {paper_maze}" in printed
    assert (out / "behaviours_Swimmer.png").exists()
    assert behaviours.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nor" in err[0]


@pytest.mark.slow
def test_paper_figures_when_every_run_was_on_a_busy_machine(tmp_path):
    """Nothing counts on the wall clock: the time panels say so instead of failing (they used to, on an empty
    legend)."""
    from harness.report import paper

    t1 = tmp_path / "paper" / "table1_mujoco"
    for algo, steps in (("trpo", 1000), ("es", 2000)):
        write_run(t1 / f"{algo}_InvertedPendulum_seed0", algo, 0, rows_of(steps, 20, 1e-3, 0.1, 0.1), busy=True)
    out = tmp_path / "out"
    assert paper.main(["--results", str(tmp_path / "paper"), "--out", str(out), "--reps", "20"]) == 0
    assert (out / "tradeoff_all.png").exists() and (out / "curves_train_time_s_all.png").exists()
    index = (out / "README.md").read_text()
    assert "2 runs read from" in index and "0 in the wall-clock statistics" in index
    assert "2 runs of table1_mujoco ran on a busy machine" in index


@pytest.mark.slow
def test_a_wall_clock_ratio_across_machines_is_flagged_and_the_machines_named(tmp_path):
    """TRPO ran on one CPU, ES on another: the timesteps ratio stands, the seconds ratio gets a dagger and a
    footnote naming each algorithm's machines, and the report lists the task's runs per machine."""
    from harness.report import paper

    t1 = tmp_path / "paper" / "table1_mujoco"
    for s in (0, 1):
        write_run(
            t1 / f"trpo_InvertedPendulum_seed{s}",
            "trpo",
            s,
            rows_of(1000, 60, 1e-3 * (1 + 0.1 * s), 1.0, 0.5),
            cpu_model="CPU A",
        )
        write_run(
            t1 / f"es_InvertedPendulum_seed{s}",
            "es",
            s,
            rows_of(2000, 60, 5e-4 * (1 + 0.1 * s), 0.05, 0.5),
            cpu_model="CPU B" if s == 0 else None,
        )
    out = tmp_path / "out"
    assert paper.main(["--results", str(tmp_path / "paper"), "--out", str(out), "--reps", "20"]) == 0
    md = (out / "table1_vs_salimans.md").read_text()
    assert "| InvertedPendulum | 50% | 0.52 | 2 [" in md  # the timesteps ratio: no dagger
    wall = md.split("The same ratio in training wall-clock time")[1]
    assert re.search(r"\| InvertedPendulum \| 50% \| [0-9.]+ \[[^]]*\] †", wall)
    assert "InvertedPendulum: es on CPU B x2 + unrecorded, trpo on CPU A x2." in wall
    report = (out / "table1_mujoco" / "report.md").read_text()
    assert "**Wall-clock runs on more than one machine**" in report
    assert "- InvertedPendulum: es: CPU B x2 (1), unrecorded (1); trpo: CPU A x2 (2)" in report
    runs = pd.read_csv(out / "table1_mujoco" / "runs.csv").set_index("run")
    assert runs.loc["trpo_InvertedPendulum_seed0", "machine"] == "CPU A x2"


@pytest.mark.slow
def test_make_figures_draws_the_shipped_results(tmp_path):
    """What CI checks: the command `make figures` runs, on the repository's own results/paper (real runs), into a
    scratch folder; every part found there is drawn, and the ES runs on Hopper appear in the final returns."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    shipped = ROOT / "results" / "paper"
    out = tmp_path / "figures"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.report.paper", "--results", str(shipped), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    index = (out / "README.md").read_text()
    for part in ("table1_mujoco", "landscape_toy"):
        if (shipped / part).is_dir():
            assert (out / ("landscape" if part == "landscape_toy" else part)).is_dir(), part
    assert list(out.rglob("*.png")) and list(out.rglob("*.pdf"))
    if (shipped / "table1_mujoco" / "es_Hopper_seed0").is_dir():
        assert "Hopper" in index
    if (shipped / "wall_time_scale" / "validation.csv").is_file():  # issue 32's model, drawn from its CSV files
        assert {"speedup.png", "time_to_threshold.png", "bytes.png"} <= {
            p.name for p in (out / "wall_time_scale").iterdir()
        }
        assert "## Wall time at scale" in index and "mean absolute error" in index
        section = index.split("## Wall time at scale")[1].split("\n## ")[0]
        links = re.findall(r"\]\(([^)]+\.(?:png|pdf|md|csv))\)", section)
        assert len(links) >= 8 and all((out / link).is_file() for link in links), links
