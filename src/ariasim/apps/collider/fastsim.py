r"""The ultra-fast simulation: apply a response model with Delphes' semantics in NumPy.

For every truth particle whose PDG code belongs to an object of the
:class:`~ariasim.apps.collider.model.ResponseModel`, the modules of the exported card are applied
in the card's order, evaluating *the card's own formula text* with ariasim's TFormula
evaluator (so the fast simulation is, by construction, what Delphes would do with the card):

1. ``Efficiency``: kept if ``Uniform() <= eps(pt, eta)`` (truth);
2. ``EnergyScale``: the four-momentum is multiplied by ``scale(pt, eta, phi, energy)``;
3. tracks, ``MomentumSmearing``: ``res = min(sigma(pt, eta), 1)``, pT drawn log-normally
   with mean pT and standard deviation ``res * pT`` (Delphes' ``LogNormal``), E from
   (pT, eta, m); calorimeter objects, ``EnergySmearing``: ``E ~ Gauss(E, sigma(eta, E))``,
   dropped if ``E <= 0``, pT = sqrt(E^2 - m^2) / cosh(eta);
4. ``AngularSmearing``: eta and phi get Gaussian offsets (phi wrapped into [-pi, pi));
   pT and m are kept and E follows the new eta (Delphes' ``SetPtEtaPhiM``), objects with
   pT <= 0 are dropped.

So every object satisfies E^2 = (pT cosh eta)^2 + m^2, as in the full simulation
(:mod:`ariasim.simulators.collider.reconstruction`, the table "Reported kinematics"):
tracks carry pT, calorimeter objects E. Two differences from Delphes remain, both
documented in the README's collider section: Delphes evaluates the ``EnergySmearing``
formula at the eta of the calorimeter entry point (the bent track's, for electrons),
this module at the eta of the momentum; and Delphes uses the generator mass of each
particle, this module the object's mass hypothesis (``mass_gev``).

Beyond Delphes: where an object has a non-Gaussian response shape
(:mod:`~ariasim.apps.collider.shape`, ``ariasim fit response --shape``) and ``shape`` is
on (the default), steps 2-3 are replaced by one draw of reco/truth (pT for tracks, E for
calorimeter objects) from the shape's conditional quantile function, and in step 4 a
calorimeter object keeps that energy (pT follows the smeared eta), as the full simulation
measures it; where the shape carries an efficiency grid
(:class:`~ariasim.apps.collider.shape.EfficiencyGrid`, learned with it), step 1 uses the
grid instead of the card's efficiency formula. The card (and so Delphes) keeps the
formulas, the Gaussian and Delphes' AngularSmearing semantics.

The output has the full simulation's columns (:data:`OUTPUT_COLUMNS`); quantities the fast
simulation does not model (cluster shapes, track covariances, simulation truth) are NaN,
-1 or False.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346; Delphes
    ``modules/Efficiency.cc``, ``EnergyScale.cc``, ``MomentumSmearing.cc`` (``LogNormal``),
    ``EnergySmearing.cc``, ``AngularSmearing.cc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ariasim.apps.collider.compiled import CompiledResponse, compile_object
from ariasim.apps.collider.model import ObjectResponse, ResponseModel
from ariasim.errors import InputError
from ariasim.export.tformula_eval import TFormulaExpression
from ariasim.simulators.collider.schema import OUTPUT_COLUMNS  # full-simulation columns, dtypes
from ariasim.utils import SeedLike, as_generator

if TYPE_CHECKING:  # pandas is imported only by the DataFrame adapters (the command needs none)
    import pandas as pd

__all__ = ["OUTPUT_COLUMNS", "FastSimulator", "columns_frame", "fastsim", "truth_columns"]

#: The truth columns of the output and their names in a particle table.
_FROM_PARTICLES = {
    "event_id": "event_id",
    "pdg": "pdg",
    "truth_pt_gev": "pt_gev",
    "truth_eta": "eta",
    "truth_phi": "phi",
    "truth_e_gev": "e_gev",
}


def _truth_sources(names: Any) -> dict[str, str]:
    """Output truth column -> input column: a full-simulation table's own truth columns,
    else a particle table's."""
    if "truth_pt_gev" in names:
        return {c: c for c in _FROM_PARTICLES}
    return dict(_FROM_PARTICLES)


def _frame_arrays(table: pd.DataFrame, source: Any) -> dict[str, np.ndarray]:
    """The columns of ``table`` the fast simulation reads, as NumPy arrays (views where the
    dtype allows), after the DataFrame's own dtype checks (pandas dtype names in errors)."""
    import pandas as pd

    cols = _truth_sources(table.columns)
    need = [c for c in cols.values() if c in table.columns]
    for c in need if len(need) == len(cols) else []:  # a missing column is reported first
        dt = table[c].dtype
        if not pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt):
            raise InputError(f"expected numbers, got values of type {dt}", path=source, column=c)
    optional = ("particle_id", "truth_charge", "charge", "truth_vz_mm", "vz_mm")
    out: dict[str, np.ndarray] = {}
    for c in [*need, *(c for c in optional if c in table.columns)]:
        s = table[c]
        if isinstance(s.dtype, np.dtype):
            out[c] = s.to_numpy()
        elif c in need and pd.api.types.is_numeric_dtype(s.dtype):
            # a numeric extension dtype: missing values become NaN
            out[c] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[c] = np.asarray(s)
    return out


def _truth_arrays(columns: Mapping[str, Any], n: int, source: Any) -> dict[str, Any]:
    """The truth columns of the output, in :func:`truth_columns`' order, as NumPy arrays
    (views of ``columns``' arrays where the dtype allows), checked; ``truth_vz_mm`` may be
    the scalar 0.0."""
    cols = _truth_sources(columns)
    missing = [c for c in cols.values() if c not in columns]
    if missing:
        raise InputError(
            "truth-particle table lacks columns (need a particle table or a full-simulation table)",
            path=source,
            column=", ".join(missing),
        )
    arrays = {k: np.asarray(columns[v]) for k, v in cols.items()}
    for k, v in arrays.items():
        if v.dtype.kind not in "iuf":
            raise InputError(
                f"expected numbers, got values of type {v.dtype}", path=source, column=cols[k]
            )
    for c in ("event_id", "pdg"):
        v = arrays[c]
        if v.dtype.kind == "f" and not (np.isfinite(v) & (v == np.round(v))).all():
            raise InputError("expected whole numbers (no NaN)", path=source, column=cols[c])
    out: dict[str, Any] = dict(arrays)
    out["particle_id"] = (
        np.asarray(columns["particle_id"]) if "particle_id" in columns else np.arange(n)
    )
    if "truth_charge" in columns:
        out["truth_charge"] = np.asarray(columns["truth_charge"])
    elif "charge" in columns:
        out["truth_charge"] = np.asarray(columns["charge"])
    else:
        from ariasim.simulators.collider.particles import charge_of

        out["truth_charge"] = charge_of(arrays["pdg"])
    vz = "truth_vz_mm" if "truth_vz_mm" in columns else ("vz_mm" if "vz_mm" in columns else None)
    out["truth_vz_mm"] = np.asarray(columns[vz]).astype(float, copy=False) if vz else 0.0
    for c in ("truth_pt_gev", "truth_eta", "truth_phi", "truth_e_gev"):
        if not np.isfinite(arrays[c].astype(float, copy=False)).all():
            raise InputError("non-finite truth values", path=source, column=cols[c])
    return out


def truth_columns(table: pd.DataFrame, *, source: Any = None) -> pd.DataFrame:
    """Truth kinematics from a particle table (``pt_gev, eta, phi, e_gev, pdg, ...``) or
    from a full-simulation table (``truth_pt_gev, ...``), as the truth columns of the output."""
    import pandas as pd

    truth = _truth_arrays(_frame_arrays(table, source), len(table), source)
    return pd.DataFrame(truth, index=pd.RangeIndex(len(table)))


def _lognormal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Delphes' MomentumSmearing::LogNormal: mean ``mean``, standard deviation ``sigma``."""
    with np.errstate(all="ignore"):
        b = np.sqrt(np.log1p((sigma / mean) ** 2))
        a = np.log(mean) - 0.5 * b * b
        out = np.exp(a + b * rng.standard_normal(mean.shape))
    return np.where(mean > 0, out, 0.0)


def _arrow_strings(names: list[str], codes: Any) -> Any:
    """``names[codes]`` as an Arrow ``large_string`` array (the type pandas' ``str`` dtype
    is written as), built from its buffers with NumPy, one pass per name and character:
    no Python string per row, and neither pandas nor ``pyarrow.compute`` imported."""
    import pyarrow as pa

    codes = np.asarray(codes, dtype=np.intp)
    encoded = [name.encode("utf-8") for name in names]
    sizes = np.array([len(b) for b in encoded], dtype=np.int64)
    offsets = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(sizes[codes], out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    for k, text in enumerate(encoded):
        starts = offsets[:-1][codes == k]
        for j, byte in enumerate(text):
            data[starts + j] = byte
    return pa.Array.from_buffers(
        pa.large_string(),
        len(codes),
        [None, pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=0,
    )


def _frame_strings(strings: Any) -> Any:
    """An Arrow string array as an array of the ``str`` dtype the full simulation writes
    (no copy when that dtype is Arrow-backed)."""
    import pandas as pd

    dtype = pd.Series([], dtype="str").dtype
    if getattr(dtype, "storage", None) == "pyarrow":
        return pd.array(strings, dtype=dtype)
    return pd.array(np.array(strings.to_pylist(), dtype=object), dtype=dtype)


def columns_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """The columns of :meth:`FastSimulator.columns` as the DataFrame
    :meth:`FastSimulator.__call__` gives for the same table and seed (no copy of the
    computed columns; one copy-on-write Series per shared constant column).

    Example:
        >>> c = {"found": np.array([True]), "object_type": _arrow_strings(["muon"], [0])}
        >>> columns_frame(c)["object_type"].tolist()
        ['muon']
    """
    import pandas as pd

    n = len(next(iter(columns.values()))) if columns else 0
    index = pd.RangeIndex(n)
    shared: dict[int, pd.Series] = {}
    out: dict[str, Any] = {}
    for k, v in columns.items():
        if not isinstance(v, np.ndarray):
            out[k] = _frame_strings(v)
        elif not v.flags.writeable:  # shared constant: a Series the frame may write to
            if id(v) not in shared:
                shared[id(v)] = pd.Series(v.copy(), index=index, copy=False)
            out[k] = shared[id(v)]
        else:
            out[k] = v
    return pd.DataFrame(out, index=index, copy=False)


#: The value of each output column the fast simulation does not model, by (dtype, is the
#: column n_muon_stations).
_UNMODELLED = {
    ("float64", False): np.nan,
    ("int64", False): -1,
    ("int64", True): 0,
    ("bool", False): False,
}


class FastSimulator:
    """A response model compiled once (card formulas printed, linted, parsed and compiled),
    applied many times.

    Arguments:
        response: The response model, or a
            :class:`~ariasim.apps.collider.compiled.CompiledResponse` (read from a file
            with stored card formulas: no sympy, same output).
        shape: Sample reco/truth from the objects' non-Gaussian response shapes
            (:mod:`~ariasim.apps.collider.shape`) where the model has one, instead of
            the card's scale and Gaussian / log-normal smearing; False: the card only.

    Example:
        >>> import pandas as pd
        >>> from ariasim.apps.collider.model import ObjectResponse, Region
        >>> from ariasim.surrogates import Formula
        >>> one = lambda text: [Region(0.0, 2.5, Formula(text, ["pt"]))]
        >>> mu = ObjectResponse("muon", "track", (13,), 2.5, efficiency=one("1.0"),
        ...                     scale=one("1.0"), resolution=one("0.01"), mass_gev=0.1057)
        >>> sim = FastSimulator(ResponseModel({"muon": mu}))
        >>> truth = pd.DataFrame({"event_id": [0, 1], "pdg": [13, -13], "pt_gev": [20.0, 50.0],
        ...                       "eta": [0.1, -1.0], "phi": [0.0, 1.0], "e_gev": [20.1, 77.2]})
        >>> out = sim(truth, 1)
        >>> out["object_type"].tolist()
        ['muon', 'muon']
    """

    def __init__(self, response: ResponseModel | CompiledResponse, *, shape: bool = True):
        self.response = response
        self.shape = shape
        if isinstance(response, CompiledResponse):  # card texts stored in the file: no sympy
            self._compiled = [
                (obj.response if obj.response is not None else obj, obj.formulas)
                for obj in response.objects
            ]
        else:
            self._compiled = [
                (obj, compile_object(obj).formulas) for obj in response.objects.values()
            ]

    def __call__(
        self, particles: pd.DataFrame, seed: SeedLike = None, *, source: Any = None
    ) -> pd.DataFrame:
        """Fast-simulate ``particles`` (see :func:`fastsim`)."""
        return _run(self._compiled, particles, seed, source, self.shape)

    def columns(
        self, particles: Mapping[str, Any], seed: SeedLike = None, *, source: Any = None
    ) -> dict[str, Any]:
        """Fast-simulate a table given as columns, without pandas.

        Arguments:
            particles: Column name -> 1-D NumPy array, of a particle table or a
                full-simulation table (the columns :func:`fastsim` reads).
            seed: Seed or Generator.
            source: File name for error messages.

        Returns:
            The output columns (:data:`OUTPUT_COLUMNS`, in order): NumPy arrays, except
            ``object_type``, an Arrow ``large_string`` array; the same values as
            :meth:`__call__` gives for the same table and seed. Columns the fast simulation
            does not model share one read-only array per value.
        """
        n = len(next(iter(particles.values()))) if particles else 0
        truth = _truth_arrays(particles, n, source)
        computed, names, codes = _simulate(self._compiled, truth, n, seed, self.shape)
        computed["object_type"] = _arrow_strings(names, codes)
        shared: dict[tuple[str, bool], np.ndarray] = {}
        out: dict[str, Any] = {}
        for col, dt in OUTPUT_COLUMNS.items():
            if col in computed:
                out[col] = computed[col]
            elif col in truth:
                v = truth[col]
                out[col] = v.astype(dt, copy=False) if np.ndim(v) else np.full(n, v, dtype=dt)
            else:
                key = (dt, col == "n_muon_stations")
                if key not in shared:
                    shared[key] = np.full(n, _UNMODELLED[key], dtype=dt)
                    shared[key].flags.writeable = False
                out[col] = shared[key]
        return out


def fastsim(
    particles: pd.DataFrame,
    response: ResponseModel,
    seed: SeedLike = None,
    *,
    source: Any = None,
    shape: bool = True,
) -> pd.DataFrame:
    """Fast-simulate truth particles with a response model (one output row per particle).

    Arguments:
        particles: Particle table or full-simulation table (its truth columns are used).
        response: The response model.
        seed: Seed or Generator.
        source: File name for error messages.
        shape: Use the objects' non-Gaussian response shapes where present.
    """
    return FastSimulator(response, shape=shape)(particles, seed, source=source)


def _wrap_phi(phi: np.ndarray) -> np.ndarray:
    """``mod(phi + pi, 2 pi) - pi`` in place; ``np.mod`` (slow) only where it changes
    something (values outside [-pi, pi), NaN), so the result is bit-identical."""
    phi += np.pi
    bad = np.flatnonzero(~((phi >= 0.0) & (phi < 2 * np.pi)))
    if bad.size:
        phi[bad] = np.mod(phi[bad], 2 * np.pi)
    phi -= np.pi
    return phi


def _from_shape(
    shape: Any,
    obj: ObjectResponse,
    rng: np.random.Generator,
    p: np.ndarray,
    h: np.ndarray,
    en: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """pT and E after drawing reco/truth of pT (tracks) or E (calorimeter objects) from
    the response shape (one uniform per object)."""
    m = obj.mass_gev
    if obj.kind == "track":
        p = p * shape.sample(p, np.abs(h), rng)
        return p, np.sqrt((p * np.cosh(h)) ** 2 + m * m)
    en = en * shape.sample(en, np.abs(h), rng)
    return np.sqrt(np.maximum(en * en - m * m, 0.0)) / np.cosh(h), en


def _apply(
    obj: ObjectResponse,
    formulas: tuple[TFormulaExpression, ...],
    rng: np.random.Generator,
    idx: np.ndarray,
    truth: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    shape: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The card's modules for one object on its candidates ``idx`` (module docstring,
    steps 1-4); ``truth`` holds the truth pT, eta, phi and energy of all particles.

    Returns ``(sel, pt, eta, phi, energy)``: the indices of the reconstructed objects and
    their values. The random numbers are drawn in the same order and sizes as Delphes'
    modules run, one module after the other.
    """
    f_eff, f_scale, f_res, f_seta, f_sphi = formulas
    grid = getattr(shape, "efficiency", None)
    if grid is not None:  # beyond Delphes: the learned efficiency grid replaces the formula
        eff = grid(np.take(truth[0 if grid.x == "pt" else 3], idx), np.take(truth[1], idx))
    else:
        used = f_eff.variables  # gather only what the efficiency formula reads
        eff = f_eff(
            *(
                np.take(v, idx) if name in used else 0.0
                for name, v in zip(("pt", "eta", "phi", "energy"), truth, strict=True)
            )
        )
    u = rng.random(idx.size)
    idx = np.take(idx, np.flatnonzero(u <= eff))
    p, h, ph, en = (np.take(v, idx) for v in truth)
    if shape is None:
        s = f_scale(p, h, ph, en)
        s[~(s > 0.0)] = 1.0  # Delphes ignores a scale <= 0
        p *= s
        en *= s
    m = obj.mass_gev
    if shape is not None:  # non-Gaussian response: replaces the scale and the smearing
        p, en = _from_shape(shape, obj, rng, p, h, en)
    elif obj.kind == "track":
        res = np.minimum(f_res(p, h, ph, en), 1.0)
        p = _lognormal(rng, p, res * p)
        en = np.sqrt((p * np.cosh(h)) ** 2 + m * m)
    else:
        sig = f_res(p, h, ph, en)
        sig *= rng.standard_normal(idx.size)
        en += sig
        with np.errstate(invalid="ignore"):
            p = np.sqrt(np.maximum(en * en - m * m, 0.0)) / np.cosh(h)
        p[~(en > m)] = 0.0  # E <= 0 (dropped by EnergySmearing) or E <= m (by the next)
    se, sp_ = f_seta(p, h, ph, en), f_sphi(p, h, ph, en)
    se *= rng.standard_normal(idx.size)
    h2 = h + se
    sp_ *= rng.standard_normal(idx.size)
    ph2 = _wrap_phi(ph + sp_)
    if shape is not None and obj.kind != "track":
        # beyond Delphes: a calorimeter object keeps the energy drawn from the shape (the
        # measured quantity, as in the full simulation) and pT follows the smeared eta;
        # Delphes' AngularSmearing would instead keep pT and move E by tanh(eta) d(eta)
        with np.errstate(invalid="ignore"):
            p = np.sqrt(np.maximum(en * en - m * m, 0.0)) / np.cosh(h2)
        p[~(en > m)] = 0.0
    else:
        # AngularSmearing keeps pT and m (SetPtEtaPhiM) and drops pT <= 0: E follows the
        # smeared eta, so E^2 = (pT cosh eta)^2 + m^2 holds for every output object
        en = np.sqrt((p * np.cosh(h2)) ** 2 + m * m)
    ok = p > 0.0
    if ok.all():
        return idx, p, h2, ph2, en
    good = np.flatnonzero(ok)
    return tuple(np.take(v, good) for v in (idx, p, h2, ph2, en))  # type: ignore[return-value]


def _simulate(
    compiled: list, truth: dict[str, Any], n: int, seed: SeedLike, shape: bool
) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    """The fast simulation of ``n`` particles with checked ``truth`` columns
    (:func:`_truth_arrays`): the computed output columns (all but ``object_type``), the
    object names and each particle's code into them (``object_type``)."""
    rng = as_generator(seed)
    pt, eta, phi, e = (
        np.asarray(truth[c], dtype=float)
        for c in ("truth_pt_gev", "truth_eta", "truth_phi", "truth_e_gev")
    )
    apdg = np.abs(truth["pdg"].astype(np.int64, copy=False))
    charge = np.asarray(truth["truth_charge"]).astype(np.int64, copy=False)
    names = ["none"]
    codes = np.zeros(n, dtype=np.int16 if len(compiled) < 32_000 else np.int64)
    rpt, reta, rphi, re_ = (np.full(n, np.nan) for _ in range(4))
    tpt, teta, tphi, clus = (np.full(n, np.nan) for _ in range(4))
    tcharge = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=bool)
    trk = np.zeros(n, dtype=bool)
    codes_seen: list[int] = [c for obj, _ in compiled for c in obj.pdg]
    overlapping = len(set(codes_seen)) < len(codes_seen)
    for obj, formulas in compiled:
        mask = apdg == obj.pdg[0]
        for code in obj.pdg[1:]:
            mask |= apdg == code
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        sel, p, h2, ph2, en = _apply(
            obj, formulas, rng, idx, (pt, eta, phi, e), obj.shape if shape else None
        )
        codes[sel] = len(names)
        names.append(obj.name)
        found[sel] = True
        rpt[sel], reta[sel], rphi[sel], re_[sel] = p, h2, ph2, en
        if obj.kind == "track":
            trk[sel] = True
            tpt[sel], teta[sel], tphi[sel] = p, h2, ph2
            tcharge[sel] = np.take(charge, sel)
        else:
            clus[sel] = en
        if overlapping:  # a later object overrides an earlier one for the same particle
            if obj.kind == "track":
                clus[sel] = np.nan
            else:
                trk[sel] = False
                tpt[sel], teta[sel], tphi[sel], tcharge[sel] = np.nan, np.nan, np.nan, 0
    computed = {
        "found": found,
        "reco_pt_gev": rpt,
        "reco_eta": reta,
        "reco_phi": rphi,
        "reco_e_gev": re_,
        "track_found": trk,
        "track_pt_gev": tpt,
        "track_eta": teta,
        "track_phi": tphi,
        "track_charge": tcharge,
        "cluster_energy_gev": clus,
    }
    return computed, names, codes


def _run(
    compiled: list, particles: pd.DataFrame, seed: SeedLike, source: Any, shape: bool = True
) -> pd.DataFrame:
    """The DataFrame adapter of :func:`_simulate`: truth columns as copy-on-write views of
    ``particles``' columns (no data is copied until either side is written to)."""
    import pandas as pd

    n = len(particles)
    truth = _truth_arrays(_frame_arrays(particles, source), n, source)
    computed, names, codes = _simulate(compiled, truth, n, seed, shape)
    computed["object_type"] = _frame_strings(_arrow_strings(names, codes))
    cols = _truth_sources(particles.columns)
    if "particle_id" in particles.columns:
        cols["particle_id"] = "particle_id"
    for c in ("truth_charge", "charge"):
        if c in particles.columns:
            cols["truth_charge"] = c
            break
    for c in ("truth_vz_mm", "vz_mm"):
        if c in particles.columns:
            cols["truth_vz_mm"] = c
            break
    index = pd.RangeIndex(n)
    # columns the fast simulation does not model: one constant Series per value, shared
    # by all such columns through copy-on-write (writing to one column copies that column)
    shared: dict[tuple[str, bool], pd.Series] = {}
    out: dict[str, Any] = {}
    for col, dt in OUTPUT_COLUMNS.items():
        if col in computed:
            out[col] = computed[col]
        elif col in cols:  # a copy-on-write view when the dtype already matches
            out[col] = particles[cols[col]].reset_index(drop=True).astype(dt)
        elif col in truth:
            v = truth[col]
            out[col] = np.array(v, dtype=dt) if np.ndim(v) else np.full(n, v, dtype=dt)
        else:
            key = (dt, col == "n_muon_stations")
            if key not in shared:
                shared[key] = pd.Series(
                    np.full(n, _UNMODELLED[key], dtype=dt), index=index, copy=False
                )
            out[col] = shared[key]
    # the arrays above are fresh and owned by the frame, the Series are tracked by
    # copy-on-write: no copy, and no consolidation into 2-D blocks (which alone cost more
    # than the whole simulation)
    return pd.DataFrame(out, index=index, copy=False)
