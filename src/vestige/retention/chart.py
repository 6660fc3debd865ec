"""A chart of history's growth: cumulative versions per table over time (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from itertools import accumulate
from pathlib import Path

from vestige.errors import ConfigError

__all__ = ["CHART_FORMATS", "write_chart"]

CHART_FORMATS = (".png", ".svg")
BAD_FORMAT = "--chart writes PNG or SVG: name the file *.png or *.svg, not {name}"
NEEDS_EXTRA = "--chart needs matplotlib ({missing} is missing): pip install 'vestige[stats]'"


def write_chart(series: Mapping[str, Sequence[tuple[date, int]]], path: Path) -> None:
    """Draw the cumulative count of versions of each table, by day, into ``path``.

    Args:
        series: Per version table, versions written per day, oldest first
            (:func:`vestige.retention.stats.daily_versions`).
        path: A ``.png`` or ``.svg`` file; its suffix picks the format.

    Raises:
        ConfigError: The suffix is neither, or matplotlib is not installed.
    """
    if path.suffix.lower() not in CHART_FORMATS:
        raise ConfigError(BAD_FORMAT.format(name=path.name))
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        from matplotlib import pyplot
    except ImportError as exc:
        raise ConfigError(NEEDS_EXTRA.format(missing=exc.name)) from None
    figure, axes = pyplot.subplots(figsize=(10, 5))
    try:
        for table, days in sorted(series.items()):
            if days:
                axes.step(
                    [datetime.combine(day, time()) for day, _ in days],  # type: ignore[arg-type]
                    list(accumulate(count for _, count in days)),
                    where="post",
                    label=table,
                )
        axes.set_title("Versions written, cumulative")
        axes.set_xlabel("day (UTC)")
        axes.set_ylabel("versions")
        if any(series.values()):
            axes.legend(loc="upper left", fontsize="small")
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(path, format=path.suffix.lower().lstrip("."))
    finally:
        pyplot.close(figure)
