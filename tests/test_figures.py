"""Figures at the sizes a paper prints them (issue 19, item 15): what a panel says when it has nothing to
draw, whole-number epoch axes, and labels that fit the task (metres for a body, none for a landscape)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from harness.report.behaviours import plot_behaviours
from harness.report.figures import PAPER, REPORT, plot_scaling


def _scaling(reached: bool) -> pd.DataFrame:
    """Scaling rows of one algorithm at 1 and 2 workers; no run at the threshold unless ``reached``."""
    rows = []
    for n, t in ((1, 2.0), (2, 1.1)):
        ttt = 30.0 / n if reached else np.inf
        rows.append(
            {
                "env": "Hopper",
                "algo": "es",
                "workers_n": n,
                "n_runs": 2,
                "fraction": 0.5,
                "time_per_epoch_s": t,
                "time_per_epoch_s_lower": t * 0.9,
                "time_per_epoch_s_upper": t * 1.1,
                "ideal_time_per_epoch_s": 2.0 / n,
                "time_to_threshold_s": ttt,
                "time_to_threshold_s_lower": ttt,
                "time_to_threshold_s_upper": ttt,
                "n_reached": 2 if reached else 0,
                "ideal_time_to_threshold_s": 30.0 / n if reached else np.nan,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.slow
@pytest.mark.parametrize("style", [REPORT, PAPER], ids=["report", "paper"])
def test_a_scaling_panel_with_no_run_at_the_threshold_says_so(tmp_path, drawn, style):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "No artists with labels found to put in legend"
        plot_scaling("Hopper", _scaling(reached=False), tmp_path, style=style)
    per_epoch, to_threshold = drawn["scaling_Hopper"].axes
    assert per_epoch.get_legend() is not None and to_threshold.get_legend() is None
    assert [t.get_text() for t in to_threshold.texts] == ["no run reached the 50% threshold"]
    plot_scaling("Hopper", _scaling(reached=True), tmp_path, style=style)
    assert not drawn["scaling_Hopper"].axes[1].texts


def _runs_with_bcs(tmp_path, env_id: str, two_d: bool) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        run_dir = tmp_path / f"es_seed{seed}"
        run_dir.mkdir()
        bcs = pd.DataFrame({"epoch": np.arange(1, 8), "source": "eval", "bc_0": np.linspace(0, 1, 7) + seed})
        if two_d:
            bcs["bc_1"] = np.linspace(1, 0, 7)
        bcs.to_csv(run_dir / "behaviours.csv", index=False)
        (run_dir / "config.yaml").write_text(f"env: {{id: {env_id}, kwargs: {{}}}}\n")
        rows.append({"run": run_dir.name, "algo": "es", "seed": seed, "run_dir": str(run_dir)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "env_id,two_d,xlabel,ylabel",
    [
        ("toy_2d", True, "x[0]", "x[1]"),
        ("toy_1d", False, "epoch", "x"),
        ("HalfCheetah-v5", False, "epoch", "final x of the centre of mass (m)"),
    ],
)
def test_the_behaviours_figure_labels_its_axes_for_the_task(tmp_path, drawn, env_id, two_d, xlabel, ylabel):
    plot_behaviours("task", env_id, _runs_with_bcs(tmp_path, env_id, two_d), tmp_path)
    fig = drawn["behaviours_task"]
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == (xlabel, ylabel)
    assert "\n" not in fig.get_suptitle()  # one line: no title running into the panel titles
    if not two_d:  # epochs are whole numbers
        assert all(float(t).is_integer() for t in ax.get_xticks())


def test_the_behaviours_legend_names_what_any_panel_draws(tmp_path, drawn):
    """ES draws evaluation BCs only; NSR-ES archived ones too: the one legend names both."""
    runs = _runs_with_bcs(tmp_path, "HalfCheetah-v5", False)
    nsr = tmp_path / "es_seed1" / "behaviours.csv"
    bcs = pd.read_csv(nsr)
    pd.concat([bcs, bcs.assign(source="archive")]).to_csv(nsr, index=False)
    runs.loc[1, "algo"] = "nsr_es"
    plot_behaviours("task", "HalfCheetah-v5", runs, tmp_path)
    labels = [t.get_text() for t in drawn["behaviours_task"].legends[0].get_texts()]
    assert labels == ["evaluation episode", "archived (mean over the BC episodes)"]


# Machado, Oliveira and Fernandes 2009: full-severity protanopia, deuteranopia and tritanopia on linear RGB
_DICHROMACY = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
    "normal vision": np.eye(3),
}


def _lab_as_seen(color: str, vision: str) -> np.ndarray:
    """CIELAB (D65) of the sRGB ``color`` as a viewer with ``vision`` sees it."""
    from matplotlib.colors import to_rgb

    c = np.array(to_rgb(color))
    linear = np.clip(
        np.array(_DICHROMACY[vision]) @ np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4), 0, 1
    )
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_every_two_algorithm_colours_are_apart_for_colour_blind_readers_too():
    """Every pair of the known algorithms' colours differs by at least 15 CIELAB units (Delta E 1976) under
    normal vision and each dichromacy; tab10's NSR-ES brown and TRPO red were 18 apart under protanopia, and
    ES and NS-ES 6."""
    import itertools

    from harness.report.figures import ALGO_COLORS

    for (a, ca), (b, cb) in itertools.combinations(ALGO_COLORS.items(), 2):
        for vision in _DICHROMACY:
            delta = float(np.linalg.norm(_lab_as_seen(ca, vision) - _lab_as_seen(cb, vision)))
            assert delta >= 15, (a, b, vision, delta)
    assert (
        min(
            float(np.linalg.norm(_lab_as_seen(ALGO_COLORS["nsr_es"], v) - _lab_as_seen(ALGO_COLORS["trpo"], v)))
            for v in _DICHROMACY
        )
        > 50
    )  # the pair the issue found close


@pytest.mark.slow
def test_a_run_with_far_more_epochs_than_its_seeds_does_not_squash_the_epochs_axis(tmp_path, drawn):
    """As Walker2d's ES seed 1 (8-step episodes: 40 times its seeds' epochs for the same steps) did."""
    from harness.report import ReportOptions, build_report
    from tests.test_report import linear_rows, write_run

    runs = tmp_path / "runs"
    for seed, per_epoch in ((0, 1000), (1, 1000), (2, 10)):  # 100, 100 and 10,000 epochs to 100k steps
        write_run(runs / f"es_seed{seed}", "es", seed, linear_rows(per_epoch, 100_000, 1e-3, 1e-5))
    build_report(runs, tmp_path / "out", ReportOptions(reps=50))
    epochs = drawn["curves_InvertedPendulum"].axes[0]
    assert epochs.get_xlabel().startswith("epoch")
    assert epochs.get_xlim() == pytest.approx((-3.3, 110))  # the seeds' curve ends at 100: a little after it
    assert [t.get_text() for t in epochs.texts] == ["1 run cut, to 10,000 epochs"]
    steps = drawn["curves_InvertedPendulum"].axes[1]  # the same runs on steps: nothing cut
    assert steps.get_xlim()[1] >= 100_000 and not steps.texts
