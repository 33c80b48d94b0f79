"""``ariasim demo``: the photon-surrogate demo pipeline (:mod:`ariasim.apps.photons.demo`)."""

from __future__ import annotations

import typer

__all__ = ["demo_command"]


def demo_command(
    out: str = typer.Option("demo-output", "--out", help="Output folder (report.html, "
                            "metrics.json, surrogate JSON files)."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (about 3 minutes)."),
    seed: int = typer.Option(1, "--seed", help="Random seed."),
) -> None:
    """Photon surrogate demo: simulate, fit, validate against the MC and Pandel, report."""
    import dataclasses

    from ariasim.apps.photons.demo import DemoConfig, run_demo

    cfg = DemoConfig.quick() if quick else DemoConfig()
    run_demo(out, config=dataclasses.replace(cfg, seed=seed))
