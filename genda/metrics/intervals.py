"""95% intervals for the numbers genda compares: accuracies on a finite test set (Wilson)
and means over seeds (Student t). FID's bootstrap interval is in :mod:`.generative`."""

from __future__ import annotations

import statistics

CONFIDENCE = 0.95


def wilson(accuracy: float, images: int) -> tuple[float, float]:
    """95% Wilson score interval (percent) of an accuracy measured on ``images`` images."""
    from scipy.stats import binomtest

    ci = binomtest(round(accuracy / 100 * images), images).proportion_ci(CONFIDENCE, "wilson")
    return 100 * ci.low, 100 * ci.high


def t_interval(values: list[float]) -> tuple[float, float]:
    """95% Student-t interval of the mean of ``values`` (two or more accuracies), clipped
    to [0, 100] where an accuracy can lie (with 2 seeds t is 12.7: wide, and honest)."""
    from scipy.stats import t

    mean, n = statistics.fmean(values), len(values)
    half = t.ppf(0.5 + CONFIDENCE / 2, n - 1) * statistics.stdev(values) / n**0.5
    return max(mean - half, 0.0), min(mean + half, 100.0)
