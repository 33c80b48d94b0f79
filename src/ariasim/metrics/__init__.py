"""Sample-quality metrics and two-sample tests.

Per-feature: moment differences, 1-D Wasserstein, Kolmogorov-Smirnov, weighted-histogram
chi-square and CaloChallenge's separation power. Multivariate: sliced Wasserstein, MMD with
a Gaussian kernel, energy distance and the classifier two-sample test. Every metric takes
NumPy arrays or pandas DataFrames and optional per-event weights. :func:`calibrate` turns a
metric value into a z-score against its own IID noise (MCBench), and :func:`compare` runs
everything on two tables and returns a tidy DataFrame (``ariasim compare A B`` on the
command line).
"""

from ariasim.metrics._core import MetricResult, effective_sample_size
from ariasim.metrics.calibration import Calibration, calibrate
from ariasim.metrics.classifier import classifier_test
from ariasim.metrics.compare import METRICS, compare
from ariasim.metrics.histogram import histogram_chi2, separation_power
from ariasim.metrics.multivariate import (
    DEFAULT_MAX_SAMPLES,
    energy_distance,
    median_bandwidth,
    mmd,
    sliced_wasserstein,
)
from ariasim.metrics.univariate import ks_test, moment_differences, wasserstein_1d, weighted_moments

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "METRICS",
    "Calibration",
    "MetricResult",
    "calibrate",
    "classifier_test",
    "compare",
    "effective_sample_size",
    "energy_distance",
    "histogram_chi2",
    "ks_test",
    "median_bandwidth",
    "mmd",
    "moment_differences",
    "separation_power",
    "sliced_wasserstein",
    "wasserstein_1d",
    "weighted_moments",
]
