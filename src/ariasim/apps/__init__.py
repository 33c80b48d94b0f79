"""Applications: a reference simulator wired to ariasim's methods, with reports.

An application names a simulator (:mod:`ariasim.simulators`) and a method
(:mod:`ariasim.surrogates`, :mod:`ariasim.metrics`, :mod:`ariasim.export`, ...); the
method packages never import an application or a simulator. See ``DESIGN.md``.

* :mod:`ariasim.apps.photons`: photon-yield and arrival-time surrogates of the photon
  Monte Carlo, the Pandel baseline, the inverse fit and the demo pipeline.
* :mod:`ariasim.apps.collider`: detector-response learning, the ultra-fast simulation,
  its comparison with the full simulation, the Delphes card writer and the report.
"""
