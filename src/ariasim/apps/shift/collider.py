"""Collider samples for domain-shift studies: detector mis-modelling and fast-sim correction.

Two data sets of issue 12 (section 3), each a :class:`ShiftSamples` (source, target, the
feature and context columns, CPU seconds, provenance):

* :func:`detector_samples` -- **detector mis-modelling**. Source: ariasim's collider full
  simulation with the nominal detector (the "simulation"). Target: the same simulation
  with a modified detector playing "data" (:func:`modified_detector`): an ECAL whose cells
  respond ``ecal_miscalibration`` times more than the test-beam calibration assumes (an
  energy-scale error) with a fixed cell-to-cell intercalibration error map of relative
  spread ``ecal_intercalibration`` (an extra constant term), and a tracker with
  ``material_scale`` times its radiation lengths (more multiple scattering, more
  bremsstrahlung, so a worse and more non-Gaussian track pT and impact parameter).
* :func:`fastsim_samples` -- **surrogate correction**. Source: the ultra-fast simulation
  (:func:`ariasim.apps.collider.fastsim.fastsim`) with a response model learned by the
  KAN (``ariasim fit response``); target: the full simulation of the same truth particles.

Rows are reconstructed objects of single-particle events from the particle gun, pT
log-flat (``dN/dpT ~ 1/pT``, a falling spectrum) in ``[pt_min_gev, pt_max_gev]`` and eta
flat in ``[-eta_max, eta_max]``; a row is kept when the particle is reconstructed as its
own object type (an electron as an electron, a muon as a muon) with finite features.
The efficiency is therefore not part of the features; the fraction kept per side is in
the provenance (``efficiency``: rows kept per simulated truth particle). Context columns:
the truth ``truth_pt_gev`` and ``truth_eta`` (the shift is learned conditionally on them).
The frames hold exactly the feature and context columns; their index is the truth event
number (``event_id``), so that paired samples (the same truth particles on both sides) can
be matched.

Features (``reco/truth`` ratios keep the range small, the truth being context):

* ``e_response``: reconstructed (super-cluster) energy / truth energy (ECAL scale and
  resolution; bremsstrahlung recovery);
* ``pt_response``: track pT / truth pT (multiple scattering and, for electrons, the
  Bethe-Heitler bremsstrahlung tail);
* ``track_chi2_ndof``: track-fit chi2 per degree of freedom (heavy-tailed: bremsstrahlung
  kinks);
* ``sigma_ietaieta``: ECAL shower width in eta (a spike at 0 for one-crystal clusters);
* ``n_hits``: tracker hits of the track (an integer count, mostly set by the eta coverage);
* ``track_d0_mm``: transverse impact parameter (muons; multiple scattering);
* ``deta``, ``dphi``: reconstructed minus truth eta and phi (fast-sim samples).

CPU seconds are process CPU time of the simulation calls after a warm-up call that
compiles the numba kernels and computes the ECAL calibration (so they measure the
per-event cost, not the one-off set-up).

Measured (seed 11, 20,000 rows per side, one core of the 2-core development machine;
classifier two-sample AUC on features + context, null sigma 0.003): detector electrons
0.695 (efficiency 0.83 nominal, 0.79 with the extra material), detector muons 0.526
(material only), fast-sim muons (KAN, 60 epochs on 20,000 particles: 10.6 CPU s) 0.761.
Rows per CPU second: full simulation 830 (electrons) and 8,000-8,500 (muons), fast
simulation 1.5 million (muons).

References:
    CMS Collaboration, "Energy calibration and resolution of the CMS electromagnetic
    calorimeter in pp collisions at sqrt(s) = 7 TeV", JINST 8 (2013) P09009
    (intercalibration precision, constant term). CMS Collaboration, "Description and
    performance of track and primary-vertex reconstruction with the CMS tracker",
    JINST 9 (2014) P10009 (material budget and its effect on resolution). J. de Favereau
    et al. (DELPHES 3), JHEP 02 (2014) 057 (fast-simulation modules).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.shift.samples import ShiftSamples
from ariasim.errors import ConfigError, check_int
from ariasim.simulators.collider import ParticleGun, load_detector, simulate
from ariasim.simulators.collider.detector import DetectorConfig, detector_from_dict
from ariasim.utils import spawn_seeds, to_jsonable

__all__ = [
    "CONTEXT",
    "DETECTOR_FEATURES",
    "FASTSIM_FEATURES",
    "SPECIES",
    "ShiftSamples",
    "detector_samples",
    "fastsim_samples",
    "fastsim_source_rows",
    "modified_detector",
]

#: Context columns of every collider sample.
CONTEXT = ["truth_pt_gev", "truth_eta"]
#: Gun species and the object type a row must be reconstructed as, per ``species``.
SPECIES: dict[str, tuple[list[str], str]] = {
    "electron": (["e-", "e+"], "electron"),
    "muon": (["mu-", "mu+"], "muon"),
}
#: Features of :func:`detector_samples` per ``species``.
DETECTOR_FEATURES: dict[str, list[str]] = {
    "electron": ["e_response", "pt_response", "track_chi2_ndof", "sigma_ietaieta", "n_hits"],
    "muon": ["pt_response", "track_d0_mm", "track_chi2_ndof", "n_hits"],
}
#: Features of :func:`fastsim_samples` per ``species`` (what the fast simulation models).
FASTSIM_FEATURES: dict[str, list[str]] = {
    "electron": ["e_response", "deta", "dphi"],
    "muon": ["pt_response", "deta", "dphi"],
}
_PDG = {"electron": 11, "muon": 13}


# ---------------------------------------------------------------------------- checks
def _check_float(name: str, value: Any, lo: float, hi: float, *, open_lo: bool = False) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.number))
        and math.isfinite(value)
        and (value > lo if open_lo else value >= lo)
        and value <= hi
    )
    if not ok:
        bracket = "(" if open_lo else "["
        raise ConfigError(f"must be in {bracket}{lo}, {hi}], got {value!r}", parameter=name)
    return float(value)


def _check_species(species: Any) -> str:
    if species not in SPECIES:
        raise ConfigError(
            f"must be one of {', '.join(SPECIES)}, got {species!r}", parameter="species"
        )
    return str(species)


def _gun(species: str, pt_min_gev: Any, pt_max_gev: Any, eta_max: Any) -> ParticleGun:
    lo = _check_float("pt_min_gev", pt_min_gev, 0.0, 1e5, open_lo=True)
    hi = _check_float("pt_max_gev", pt_max_gev, lo, 1e5)
    eta = _check_float("eta_max", eta_max, 0.0, 2.5, open_lo=True)
    return ParticleGun(SPECIES[species][0], lo, hi, log_pt=True, eta_min=-eta, eta_max=eta)


# -------------------------------------------------------------------- the detectors
def modified_detector(
    detector: str | os.PathLike[str] | DetectorConfig = "default",
    *,
    ecal_miscalibration: float = 1.01,
    ecal_intercalibration: float = 0.01,
    material_scale: float = 1.3,
) -> DetectorConfig:
    """A detector that plays "data": ``detector`` with a miscalibrated ECAL and more material.

    Arguments:
        detector: The nominal detector (name, TOML path or configuration).
        ecal_miscalibration: ECAL cell response relative to its calibration (1.02: the
            "data" measure 2 % more energy than the simulation for the same shower).
        ecal_intercalibration: Relative spread of a fixed cell-to-cell calibration error
            map (adds about this much in quadrature to the constant term of the energy
            resolution, less the averaging over the few crystals of a shower).
        material_scale: Factor on the radiation (and nuclear interaction) lengths of
            every tracker layer.

    Example:
        >>> det = modified_detector(ecal_miscalibration=1.02, material_scale=1.5)
        >>> det.ecal.miscalibration, round(det.layers[0].thickness_x0 / 0.015, 3)
        (1.02, 1.5)
    """
    mis = _check_float("ecal_miscalibration", ecal_miscalibration, 0.5, 2.0)
    inter = _check_float("ecal_intercalibration", ecal_intercalibration, 0.0, 0.3)
    scale = _check_float("material_scale", material_scale, 0.0, 10.0, open_lo=True)
    nominal = load_detector(detector)
    raw = copy.deepcopy(nominal.raw)
    raw["ecal"] = {**raw["ecal"], "miscalibration": mis, "intercalibration_spread": inter}
    for group in raw["tracker"]:
        for key in ("thickness_x0", "thickness_lambda"):
            if key in group:
                v = group[key]
                group[key] = [x * scale for x in v] if isinstance(v, list) else v * scale
    raw["name"] = f"{nominal.name}-modified"
    raw["description"] = (
        f"{nominal.name} with ECAL miscalibration {mis}, intercalibration spread {inter}, "
        f"tracker material x{scale}"
    )
    return detector_from_dict(raw, source=f"{nominal.source} (modified)")


# ----------------------------------------------------------------------- features
def _wrap(phi: np.ndarray) -> np.ndarray:
    return np.mod(phi + np.pi, 2.0 * np.pi) - np.pi


def _feature_frame(table: pd.DataFrame, species: str, features: Sequence[str]) -> pd.DataFrame:
    """The rows of a (full- or fast-) simulation table reconstructed as their own object
    type with finite features: the feature and context columns, indexed by event."""
    obj = SPECIES[species][1]
    keep = (np.abs(table["pdg"].to_numpy()) == _PDG[species]) & (
        table["object_type"].astype(str).to_numpy() == obj
    )
    t = table[keep]

    def col(name: str) -> np.ndarray:
        return t[name].to_numpy(float)

    make: dict[str, Callable[[], np.ndarray]] = {
        "e_response": lambda: col("reco_e_gev") / col("truth_e_gev"),
        "pt_response": lambda: col("reco_pt_gev") / col("truth_pt_gev"),
        "track_chi2_ndof": lambda: col("track_chi2") / np.maximum(col("track_ndof"), 1.0),
        "sigma_ietaieta": lambda: col("sigma_ietaieta"),
        "n_hits": lambda: t["n_hits"].to_numpy(np.int64),
        "track_d0_mm": lambda: col("track_d0_mm"),
        "deta": lambda: col("reco_eta") - col("truth_eta"),
        "dphi": lambda: _wrap(col("reco_phi") - col("truth_phi")),
    }
    data = {name: make[name]() for name in features}
    data["truth_pt_gev"] = col("truth_pt_gev")
    data["truth_eta"] = col("truth_eta")
    out = pd.DataFrame(data, index=pd.Index(t["event_id"].to_numpy(np.int64), name="event_id"))
    finite = np.isfinite(out.to_numpy(float)).all(axis=1)
    return out[finite]


def _collect(
    gun: ParticleGun,
    n_rows: int,
    seed: int,
    simulators: Sequence[Callable[[pd.DataFrame, int], pd.DataFrame]],
    select: Callable[[pd.DataFrame], pd.DataFrame],
    *,
    first_event: int = 0,
) -> tuple[list[pd.DataFrame], list[float], dict[str, Any]]:
    """Simulate rounds of gun particles (the same truth for every simulator) until every
    simulator has ``n_rows`` selected rows; the first ``n_rows`` of each are returned with
    the CPU seconds of its simulation calls.

    Round ``k`` draws its truth and simulation seeds from the ``k``-th seed of ``seed``,
    so the output depends on ``(gun, n_rows, seed)`` only.
    """
    round_seeds = spawn_seeds(seed, 64)
    rows: list[list[pd.DataFrame]] = [[] for _ in simulators]
    have = [0] * len(simulators)
    cpu = [0.0] * len(simulators)
    n_sim = [0] * len(simulators)
    n_truth = 0
    eff = 0.8  # first guess of the fraction of particles kept
    k = 0
    while min(have) < n_rows:
        if k == len(round_seeds):  # pragma: no cover - needs an efficiency near 0
            raise ConfigError(
                f"fewer than {n_rows} rows after {n_truth} particles: the selection keeps "
                "almost nothing in this phase space",
                parameter="pt_min_gev",
            )
        need = n_rows - min(have)
        m = math.ceil(need / max(eff, 0.05) * 1.1) + 50
        truth_seed, *sim_seeds = spawn_seeds(round_seeds[k], 1 + len(simulators))
        truth = gun.generate(m, truth_seed, first_event=first_event + n_truth)
        for i, (sim, s) in enumerate(zip(simulators, sim_seeds, strict=True)):
            if have[i] >= n_rows:
                continue
            t0 = time.process_time()
            table = sim(truth, s)
            cpu[i] += time.process_time() - t0
            sel = select(table)
            rows[i].append(sel)
            have[i] += len(sel)
            n_sim[i] += m
        n_truth += m
        eff = max(min(have) / n_truth, 0.05)
        k += 1
    frames = [pd.concat(r).iloc[:n_rows] for r in rows]
    efficiency = [h / n for h, n in zip(have, n_sim, strict=True)]
    return frames, cpu, {"n_truth": n_truth, "rounds": k, "efficiency": efficiency}


def _full(detector: DetectorConfig) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def run(truth: pd.DataFrame, seed: int) -> pd.DataFrame:
        return simulate(truth, detector, seed=seed)

    return run


def _warm_up(detector: DetectorConfig, gun: ParticleGun) -> None:
    """Compile the numba kernels and compute the ECAL calibration outside the timing."""
    simulate(gun.generate(20, 0), detector, seed=0)


# ------------------------------------------------------------------ detector samples
def detector_samples(
    n_rows: int,
    *,
    seed: int = 0,
    species: str = "electron",
    ecal_miscalibration: float = 1.01,
    ecal_intercalibration: float = 0.01,
    material_scale: float = 1.3,
    pt_min_gev: float = 5.0,
    pt_max_gev: float = 200.0,
    eta_max: float = 2.4,
    paired: bool = False,
    detector: str | os.PathLike[str] | DetectorConfig = "default",
) -> ShiftSamples:
    """Nominal full simulation (source) vs a mis-modelled detector playing "data" (target).

    Arguments:
        n_rows: Reconstructed objects per side (CI: ~2000, a few seconds per side; the
            issue's figures: 20,000).
        seed: Seed (same arguments and seed give identical frames).
        species: ``"electron"`` (ECAL and tracker effects) or ``"muon"`` (tracker only).
        ecal_miscalibration, ecal_intercalibration, material_scale: The modification
            (see :func:`modified_detector`); 1, 0, 1 give the nominal detector on both
            sides (a closure sample: no shift).
        pt_min_gev, pt_max_gev: Truth pT range (log-flat).
        eta_max: Truth ``|eta|`` range (flat), at most 2.5.
        paired: Simulate the same truth particles on both sides (default: independent
            particles, as simulation and data are).
        detector: The nominal detector.

    Returns:
        A :class:`ShiftSamples`: features :data:`DETECTOR_FEATURES` ``[species]``, context
        :data:`CONTEXT`; ``cpu_seconds`` of the ``source`` and ``target`` simulations.
    """
    n_rows = check_int("n_rows", n_rows, 10)
    spawn_seeds(seed, 1)  # a ConfigError naming seed
    species = _check_species(species)
    if not isinstance(paired, bool):
        raise ConfigError(f"must be True or False, got {paired!r}", parameter="paired")
    gun = _gun(species, pt_min_gev, pt_max_gev, eta_max)
    nominal = load_detector(detector)
    data = modified_detector(
        nominal,
        ecal_miscalibration=ecal_miscalibration,
        ecal_intercalibration=ecal_intercalibration,
        material_scale=material_scale,
    )
    features = DETECTOR_FEATURES[species]

    def select(table: pd.DataFrame) -> pd.DataFrame:
        return _feature_frame(table, species, features)

    for det in (nominal, data):
        _warm_up(det, gun)
    s_side, s_src, s_tgt = spawn_seeds(seed, 3)
    if paired:
        (src, tgt), (c_src, c_tgt), info = _collect(
            gun, n_rows, s_side, [_full(nominal), _full(data)], select
        )
        eff = info["efficiency"]
    else:
        (src,), (c_src,), i_src = _collect(gun, n_rows, s_src, [_full(nominal)], select)
        # distinct event numbers on the two sides (independent events)
        (tgt,), (c_tgt,), i_tgt = _collect(
            gun, n_rows, s_tgt, [_full(data)], select, first_event=10**9
        )
        eff = i_src["efficiency"] + i_tgt["efficiency"]
    provenance = {
        "application": "detector mis-modelling",
        "species": species,
        "gun": gun.to_dict(),
        "seed": seed,
        "paired": paired,
        "n_rows": n_rows,
        "source_detector": nominal.name,
        "target_detector": data.name,
        "modification": {
            "ecal_miscalibration": float(ecal_miscalibration),
            "ecal_intercalibration": float(ecal_intercalibration),
            "material_scale": float(material_scale),
        },
        "efficiency": {"source": eff[0], "target": eff[1]},
    }
    return ShiftSamples(
        source=src,
        target=tgt,
        features=list(features),
        context=list(CONTEXT),
        cpu_seconds={"source": c_src, "target": c_tgt},
        provenance=to_jsonable(provenance),
    )


# ------------------------------------------------------------------- fastsim samples
def _response_model(response: Any) -> Any:
    from ariasim.apps.collider.model import ResponseModel

    if isinstance(response, ResponseModel):
        return response
    if isinstance(response, (str, os.PathLike)):
        return ResponseModel.load(response)
    raise ConfigError(
        f"expected a ResponseModel, a model file or None, got {type(response).__name__}",
        parameter="response",
    )


def _fast_side(
    model: Any, species: str
) -> tuple[Callable[[pd.DataFrame, int], pd.DataFrame], Callable[[pd.DataFrame], pd.DataFrame]]:
    """The fast simulation of ``model`` and the row selection of ``species`` for
    :func:`_collect` (shared by :func:`fastsim_samples` and :func:`fastsim_source_rows`);
    a model without the species' object is refused, naming ``response``."""
    from ariasim.apps.collider.fastsim import FastSimulator

    obj = SPECIES[species][1]
    if obj not in model.objects:
        raise ConfigError(
            f"the response model has no {obj!r} object (it has "
            f"{', '.join(model.objects) or 'none'})",
            parameter="response",
        )
    features = FASTSIM_FEATURES[species]

    def select(table: pd.DataFrame) -> pd.DataFrame:
        return _feature_frame(table, species, features)

    return FastSimulator(model), select


def fastsim_source_rows(
    n_rows: int,
    response: Any,
    *,
    seed: int = 0,
    species: str = "muon",
    pt_min_gev: float = 5.0,
    pt_max_gev: float = 200.0,
    eta_max: float = 2.4,
    first_event: int = 3 * 10**9,
) -> pd.DataFrame:
    """Extra source (fast-simulation) rows of :func:`fastsim_samples`: ``n_rows`` rows of
    fresh gun particles simulated by the given response model, with the features
    :data:`FASTSIM_FEATURES` ``[species]`` and context :data:`CONTEXT` computed exactly as
    :func:`fastsim_samples` computes them (no full simulation is run).

    The fast simulation is nearly free, so a morph's source side can be learned from many
    more rows than its (expensive) target side (BENCHMARKS.md "The cheap side learned from
    10x the rows").

    Arguments:
        n_rows: Rows to return.
        response: The response model (a :class:`~ariasim.apps.collider.model.ResponseModel`,
            its file, or its dict as in ``fastsim_samples(...).provenance["response_model"]``).
        seed: Seed of the truth particles and of the fast simulation (use a seed stream that
            :func:`fastsim_samples` does not use, e.g. a further ``spawn_seeds`` child).
        species, pt_min_gev, pt_max_gev, eta_max: The gun (as in :func:`fastsim_samples`).
        first_event: Event id of the first truth particle (keeps the rows' event ids apart
            from those of :func:`fastsim_samples`, which start at 0 and 10**9).

    Returns:
        A frame indexed by event id with the feature and context columns.
    """

    n_rows = check_int("n_rows", n_rows, 1)
    spawn_seeds(seed, 1)
    species = _check_species(species)
    first_event = check_int("first_event", first_event, 0)
    gun = _gun(species, pt_min_gev, pt_max_gev, eta_max)
    if isinstance(response, dict):
        from ariasim.apps.collider.model import ResponseModel

        response = ResponseModel.from_dict(response)
    run_fast, select = _fast_side(_response_model(response), species)
    (rows,), _, _ = _collect(gun, n_rows, seed, [run_fast], select, first_event=first_event)
    return rows


def fastsim_samples(
    n_rows: int,
    *,
    seed: int = 0,
    species: str = "muon",
    response: Any = None,
    method: str = "kan",
    train_rows: int = 20_000,
    epochs: int | None = None,
    regions: str = "single",
    pt_min_gev: float = 5.0,
    pt_max_gev: float = 200.0,
    eta_max: float = 2.4,
    paired: bool = True,
    detector: str | os.PathLike[str] | DetectorConfig = "default",
) -> ShiftSamples:
    """The ultra-fast (KAN response) simulation (source) vs the full simulation (target).

    The response model is either given (``response``: a
    :class:`~ariasim.apps.collider.model.ResponseModel` or the JSON file of ``ariasim fit
    response``) or learned here, as ``ariasim fit response`` does, from ``train_rows``
    truth particles of the same gun simulated in full (an independent sample).

    Arguments:
        n_rows: Reconstructed objects per side.
        seed: Seed (same arguments and seed give identical frames).
        species: ``"muon"`` (a track object: log-normal pT response) or ``"electron"``
            (a calorimeter object: Gaussian energy response).
        response: A response model or its file (None: learn one).
        method: Learner when ``response`` is None: ``"kan"`` (the KAN fast simulation),
            ``"poly"`` or ``"sr"`` (:func:`ariasim.apps.collider.learn.learner_for_method`).
        train_rows: Truth particles of the training sample when learning.
        epochs: KAN epochs (None: the learner's default, 60).
        regions: ``"single"`` (one |eta| region, quick) or ``"auto"`` (learned regions).
        pt_min_gev, pt_max_gev, eta_max: The gun (as in :func:`detector_samples`).
        paired: Both sides from the same truth particles (default; the fast simulation's
            purpose is to replace the full one for given events).
        detector: The detector of the full simulation.

    Returns:
        A :class:`ShiftSamples`: features :data:`FASTSIM_FEATURES` ``[species]``, context
        :data:`CONTEXT`; ``cpu_seconds`` of ``source`` (fast simulation), ``target`` (full
        simulation) and, when learned here, ``train_simulation`` and ``train_fit``;
        ``provenance["response_model"]`` is the model used, as a dict
        (:meth:`~ariasim.apps.collider.model.ResponseModel.from_dict` rebuilds it).
    """
    from ariasim.apps.collider.learn import learner_for_method

    n_rows = check_int("n_rows", n_rows, 10)
    spawn_seeds(seed, 1)
    species = _check_species(species)
    if not isinstance(paired, bool):
        raise ConfigError(f"must be True or False, got {paired!r}", parameter="paired")
    gun = _gun(species, pt_min_gev, pt_max_gev, eta_max)
    det = load_detector(detector)
    obj = SPECIES[species][1]
    features = FASTSIM_FEATURES[species]
    s_train, s_train_sim, s_fit, s_pair, s_src, s_tgt = spawn_seeds(seed, 6)
    cpu: dict[str, float] = {}
    _warm_up(det, gun)
    if response is None:
        train_rows = check_int("train_rows", train_rows, 200)
        learner = learner_for_method(
            method,
            epochs=epochs,
            regions=regions,
            objects=[obj],
            eta_max=float(eta_max),
            random_state=s_fit,
        )
        t0 = time.process_time()
        truth = gun.generate(train_rows, s_train, first_event=2 * 10**9)
        train = simulate(truth, det, seed=s_train_sim)
        cpu["train_simulation"] = time.process_time() - t0
        t0 = time.process_time()
        model = learner.fit(train, source="fastsim_samples training sample").model_
        cpu["train_fit"] = time.process_time() - t0
        learned: dict[str, Any] = {
            "method": method,
            "train_rows": train_rows,
            "epochs": epochs,
            "regions": regions,
        }
    else:
        model = _response_model(response)
        learned = {"given": str(response) if not hasattr(response, "objects") else "object"}
    run_fast, select = _fast_side(model, species)

    if paired:
        (src, tgt), (c_src, c_tgt), info = _collect(
            gun, n_rows, s_pair, [run_fast, _full(det)], select
        )
        eff = info["efficiency"]
    else:
        (src,), (c_src,), i_src = _collect(gun, n_rows, s_src, [run_fast], select)
        (tgt,), (c_tgt,), i_tgt = _collect(
            gun, n_rows, s_tgt, [_full(det)], select, first_event=10**9
        )
        eff = i_src["efficiency"] + i_tgt["efficiency"]
    cpu = {"source": c_src, "target": c_tgt, **cpu}
    provenance = {
        "application": "fast-simulation correction",
        "species": species,
        "object": obj,
        "gun": gun.to_dict(),
        "seed": seed,
        "paired": paired,
        "n_rows": n_rows,
        "detector": det.name,
        "response": learned,
        # the whole model (``ResponseModel.from_dict`` rebuilds it; no timings)
        "response_model": model.to_dict(),
        "efficiency": {"source": eff[0], "target": eff[1]},
    }
    return ShiftSamples(
        source=src,
        target=tgt,
        features=list(features),
        context=list(CONTEXT),
        cpu_seconds=cpu,
        provenance=to_jsonable(provenance),
    )
