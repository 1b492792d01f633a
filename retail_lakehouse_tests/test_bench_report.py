"""The bench's scaling plot: which run each point comes from."""

from bench.report import seconds_per_million_lines


def _run(scale: float, days: int, **medians: float | None) -> dict:
    lines = int(scale * 1_000_000)
    return {"scale": scale, "days": days, "impls": {n: {"median": m, "sales_lines": lines, "label": n} for n, m in medians.items()}}


def test_each_implementation_keeps_its_latest_successful_run_of_each_scale():
    history = [
        _run(1, 365, a=40.0, g=120.0),
        _run(10, 365, a=350.0),
        _run(10, 365, g=500.0),  # a Spark-only run of scale 10 must not hide (a)'s point
        _run(1, 365, a=None),  # a failed round: the earlier success stays
        _run(1, 30, a=1.0),  # another number of days: another plot
        _run(1, 365, g=110.0),
    ]
    assert seconds_per_million_lines(history, 365) == {"a": [(1, 40.0), (10, 35.0)], "g": [(1, 110.0), (10, 50.0)]}
    assert seconds_per_million_lines(history, 30) == {"a": [(1, 1.0)]}
