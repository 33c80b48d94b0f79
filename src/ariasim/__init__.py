"""ariasim: cheaper physics simulations that stay true.

Five pillars share one data model (event tables, :class:`Formula` objects) and one set
of sample-quality metrics; see the README for an overview.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
