import contextlib
import io
import logging

from harness.runner import Budget


def test_budget_stops_at_whichever_limit_comes_first():
    b = Budget(timesteps=1000, generations=5, wall_time_s=60.0)
    assert b.exhausted(1, 999, 1.0) is None
    assert b.exhausted(1, 1000, 1.0) == "budget.timesteps"
    assert b.exhausted(5, 10, 1.0) == "budget.generations"
    assert b.exhausted(2, 10, 60.0) == "budget.wall_time_s"


def test_zero_or_none_means_no_limit():
    b = Budget(timesteps=0, generations=None, wall_time_s=30)
    assert b.exhausted(10**6, 10**12, 29.9) is None
    assert b.exhausted(1, 1, 30.0) == "budget.wall_time_s"


@contextlib.contextmanager
def _console_and_log_file(tmp_path):
    """The root logger at INFO writing to a console (a StringIO) and to ``tmp_path/harness.log``."""
    root = logging.getLogger()
    console, logfile = io.StringIO(), tmp_path / "harness.log"
    handlers = [logging.StreamHandler(console), logging.FileHandler(logfile)]
    old_level = root.level
    root.setLevel(logging.INFO)
    for h in handlers:
        root.addHandler(h)
    try:
        yield console, logfile
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(old_level)


def test_epoch_lines_reach_the_log_file_but_not_the_console_under_a_progress_bar(tmp_path):
    from harness.tracking import EPOCH_LOGGER, Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    with _console_and_log_file(tmp_path) as (console, logfile):
        progress = Progress({"generations": 3}, enabled=True, file=Terminal())
        assert not progress.bar.disable
        logging.getLogger(EPOCH_LOGGER).info("epoch 1 | under the bar")
        logging.getLogger("harness.runner").warning("a warning still shows")
        progress.close()
        logging.getLogger(EPOCH_LOGGER).info("epoch 2 | no bar any more")
    assert "epoch 1" not in console.getvalue() and "a warning still shows" in console.getvalue()
    assert "epoch 2" in console.getvalue()
    assert "epoch 1 | under the bar" in logfile.read_text()


def test_without_a_bar_the_console_gets_a_few_epoch_lines_and_the_log_file_all(tmp_path):
    """Issue 19, item 14: a toy run's 300 epochs in two seconds print a few lines, not 300."""
    from harness.tracking import EPOCH_LOGGER, Progress

    with _console_and_log_file(tmp_path) as (console, logfile):
        progress = Progress({"generations": 300}, enabled=False)
        for epoch in range(1, 301):
            logging.getLogger(EPOCH_LOGGER).info("epoch %d | quick", epoch)
        logging.getLogger("harness.runner").warning("a warning always shows")
        progress.close()
    shown = [line for line in console.getvalue().splitlines() if line.startswith("epoch")]
    assert shown[0] == "epoch 1 | quick" and len(shown) <= 3  # a line a second at most
    assert "a warning always shows" in console.getvalue()
    assert logfile.read_text().count("| quick") == 300


def test_budget_describes_its_limits_in_words():
    assert Budget(timesteps=5_000_000).describe() == "5,000,000 timesteps"
    assert Budget(timesteps=1000, generations=3, wall_time_s=90.0).describe() == "1,000 timesteps or 3 epochs or 90 s"
    assert Budget(generations=1).describe() == "1 epoch" and Budget().describe() == "no limit"


def test_describe_run_dir_asks_checkpoints_for_the_epoch_not_the_folder_name(tmp_path, monkeypatch):
    from harness.runner import Checkpoints, describe_run_dir

    class Trainer:
        def save_checkpoint(self, folder):
            (folder / "state.npz").write_bytes(b"")

    checkpoints = Checkpoints(tmp_path)
    assert checkpoints.latest_epoch() is None
    (tmp_path / "metrics.csv").write_text("epoch,timesteps\n1,10\n2,20\n3,30\n")
    checkpoints.write(3, Trainer(), {"epoch": 3, "timesteps": 30})
    assert checkpoints.latest_epoch() == 3  # from the checkpoint's runner.json
    assert "the last checkpoint is epoch 3" in describe_run_dir(tmp_path)
    # how a checkpoint's folder is named is Checkpoints' business: describe_run_dir reads no folder name
    monkeypatch.setattr(Checkpoints, "latest_epoch", lambda self: 2)
    assert describe_run_dir(tmp_path, summary_written=False) == (
        "metrics.csv holds epochs 1-3, the last checkpoint is epoch 2, summary.json could not be written"
    )
