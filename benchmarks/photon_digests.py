"""Digests of the photon kernels' output, to check that a refactoring is bit-identical.

Runs ``simulate`` and ``tabulate_shells`` on a few fixed configurations (cascade and muon
sources; bulk, layered and water media; one and two threads) and prints one
SHA-256 per configuration over every output array. Run it on two commits and compare:

    python benchmarks/photon_digests.py > after.txt
    git stash; python benchmarks/photon_digests.py > before.txt; git stash pop
    diff before.txt after.txt     # no output: bit-identical

Uses only API that existed before the applications floor (issue 9), so it runs on both
sides of that change.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ariasim.simulators.photons import (
    Cascade,
    Flasher,
    MuonSegment,
    bulk_ice,
    layered_ice,
    simulate,
    single_module,
    string_detector,
    tabulate_shells,
    water,
)
from ariasim.simulators.photons.optics import example_ice_table_path


def _digest(*frames: object) -> str:
    h = hashlib.sha256()
    for f in frames:
        if hasattr(f, "columns"):
            for c in sorted(f.columns):  # type: ignore[attr-defined]
                a = np.ascontiguousarray(f[c].to_numpy())  # type: ignore[index]
                h.update(c.encode() + a.dtype.str.encode() + a.tobytes())
        else:
            h.update(np.ascontiguousarray(np.asarray(f)).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    det = string_detector(2, 5, string_spacing_m=20.0, module_spacing_m=10.0)
    near = single_module((0.0, 0.0, -5.0))
    wdet = string_detector(
        2, 5, string_spacing_m=20.0, module_spacing_m=10.0, acceptance_mode="weight"
    )
    fdet = string_detector(
        2,
        5,
        string_spacing_m=20.0,
        module_spacing_m=10.0,
        angular_acceptance="flat",
        wavelength_acceptance=False,
    )
    runs = {
        "cascade-bulk": (Cascade(energy_gev=50.0), bulk_ice(), near),
        "muon-layered": (MuonSegment(length_m=200.0), layered_ice(example_ice_table_path()), det),
        "cascade-water": (Cascade(energy_gev=50.0), water(), near),
        "flasher-string": (
            Flasher((9.0, 0.0, 1.0), n_photons=2e5, wavelength_nm=(350, 450)),
            bulk_ice(),
            det,
        ),
        "flasher-flat": (
            Flasher((9.0, 0.0, 1.0), n_photons=1e5, wavelength_nm=(350, 450)),
            bulk_ice(),
            fdet,
        ),
        "flasher-weight": (
            Flasher((9.0, 0.0, 1.0), n_photons=1e5, wavelength_nm=(300, 500)),
            bulk_ice(),
            wdet,
        ),
    }
    for name, (src, med, d) in runs.items():
        for threads in (1, 2):
            res = simulate(src, med, d, seed=7, n_events=2, n_threads=threads, progress=False)
            digest = _digest(res.hits, res.counts)
            print(f"simulate {name} threads={threads}: {len(res.hits)} hits, {digest}")
    for threads in (1, 2):
        tab = tabulate_shells(
            Flasher(n_photons=2e5),
            bulk_ice(),
            [10.0, 30.0],
            seed=3,
            n_threads=threads,
            progress=False,
        )
        fields = sorted(k for k, v in vars(tab).items() if isinstance(v, np.ndarray))
        arrays = [getattr(tab, k) for k in fields]
        print(f"tabulate_shells flasher-bulk threads={threads}: {_digest(*arrays)}")


if __name__ == "__main__":
    main()
