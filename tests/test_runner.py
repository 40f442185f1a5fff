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
