"""The exported card in real Delphes: the bin rule against the full simulation, and speed.

Anchor: a Delphes build (github delphes/delphes, ``make`` against ROOT, e.g. ROOT 6.40 from
the pip package ``root``; the recipe and its three workarounds are in the shared
REFERENCE.md, section 3). Steps:

(a) the response model is exported with the ``ariasim export delphes`` command (complete
    card and the ``--modules-out`` blocks; both linted);
(b) the truth particles of the held-out full-simulation events (odd ``event_id``; the model
    is fitted with ``--events even``) are written as single-particle HepMC3 events with
    pyhepmc, with their production vertex;
(c) ``DelphesHepMC3 card.tcl out.root in.hepmc3`` runs the card;
(d) the ROOT output is read with uproot; event k holds particle k (its ``Particle`` branch
    is checked against the truth), and the object of the card's branch for that particle's
    type (Muon, Electron, Photon, ChargedHadron) is its reconstruction;
(e) the bin rule of issue 14, per bin of truth pT x |truth eta| (:data:`PT_EDGES` GeV x
    :data:`ETA_EDGES`, 7 x 3 = 21 bins): the 68 % width of reco/truth (half the 16-84 %
    interval) of Delphes within 15 % of the full simulation's, and the efficiency
    (reconstructed and identified as that object) within 3 sigma (binomial, both samples)
    or 0.02 of the full simulation's; for muons and charged pions in pT, electrons and
    photons in E (electron pT as information). The width is compared where both samples
    have at least :data:`MIN_RECO` reconstructed objects in the bin; a bin with fewer is
    judged on its efficiency alone (marked in the table);
(f) speed, start-up included: the whole ``ariasim fastsim`` command on a particle table
    (.parquet) and the whole Delphes command on the same particles (HepMC3, written
    beforehand, as the parquet table is), alternating, ``--repeat`` times per size; medians
    and the ratio Delphes / ariasim are printed. Both run in one thread.

Without ``--delphes`` there is no anchor: the card is exported and only ariasim's side of
(f) runs. Usage::

    python benchmarks/bench_delphes.py --delphes /path/to/delphes [--root-env VENV]
        --full full.parquet --response response.json [--json out.json] [--sizes 20000,200000]
        [--repeat 3] [--work DIR] [--max-events N] [--delphes-seed N]
        [--heldout FILE [--heldout-part I/K]] [--objects electron,photon]

Delphes seeds its random generator from the clock unless the card sets ``RandomSeed``, so
the same card passes a bin or two more or fewer from run to run; ``--delphes-seed N``
(N > 0) runs the held-out particles with ``set RandomSeed N`` added to a copy of the card
(the same table every time). ``--sizes ""`` skips the timing.

The judged sample is the odd events of ``--full`` (the model is fitted on its even events),
so every Delphes seed judges the same full-simulation particles and a fluctuation of that
sample fails at every seed. ``--heldout FILE`` judges instead every event of another
full-simulation table that the fit never saw (an independent simulation of the same gun);
``--heldout-part I/K`` (1 <= I <= K) keeps its events with ``event_id % K == I - 1``, so
K runs judge K disjoint samples. ``--objects`` names the objects judged (default all four;
e.g. ``electron,photon`` for a table of electrons and photons only).

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
    A. Buckley et al., "The HepMC3 event record library", Comput. Phys. Commun. 260 (2021)
    107310 (the ASCII format read by DelphesHepMC3).
"""

from __future__ import annotations

import argparse
import glob
import itertools
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.collider.compact import EFF_WIDE_ETA, EFF_WIDE_PT
from ariasim.apps.collider.fastsim import fastsim
from ariasim.apps.collider.model import ResponseModel
from ariasim.apps.collider.objects import select_events
from ariasim.io import read_table, write_table
from ariasim.simulators.collider.particles import ParticleGun, particle_table
from ariasim.utils import write_json

SPECIES = ["mu-", "e-", "gamma", "pi+"]
#: Truth-pT bin edges (GeV) of the bin rule: 7 bins, about log-even over the gun's 1-300 GeV
#: (the library's, whose efficiency fit matches these bins' averages).
PT_EDGES = EFF_WIDE_PT
#: |truth eta| bin edges: central barrel, outer barrel, endcap (3 bins).
ETA_EDGES = EFF_WIDE_ETA
#: (object, quantity of reco/truth) judged by the rule; electron pT is information only.
RULE = (("muon", "pt"), ("charged_hadron", "pt"), ("electron", "energy"), ("photon", "energy"))
INFO = (("electron", "pt"),)
#: Width tolerance (relative) and efficiency tolerance (absolute floor, sigmas).
WIDTH_TOL, EFF_ABS, EFF_SIGMAS = 0.15, 0.02, 3.0
#: Reconstructed objects needed in both samples to compare widths in a bin.
MIN_RECO = 30
#: Delphes branch of each object of an ariasim card (``TreeWriter`` of the exported card).
BRANCHES = {
    "muon": "Muon",
    "electron": "Electron",
    "photon": "Photon",
    "charged_hadron": "ChargedHadron",
}
#: Beam energy (GeV) of the two protons of a primary vertex off the origin (HepMC3 events).
BEAM_GEV = 6500.0
PDG_OBJECT = {13: "muon", 11: "electron", 22: "photon", 211: "charged_hadron"}


# --------------------------------------------------------------------------- Delphes


@dataclass(frozen=True)
class Delphes:
    """How to run a Delphes build: the HepMC3 reader executable and its environment.

    Arguments:
        exe: Path of ``DelphesHepMC3``.
        env: Environment of the run (``LD_LIBRARY_PATH`` with ROOT's and Delphes' libraries).
    """

    exe: Path
    env: dict[str, str]

    def run(self, card: Path, hepmc: Path, out_root: Path, log: Path) -> Timed:
        """Run the card on ``hepmc`` into ``out_root``; wall and CPU seconds of the command."""
        out_root.unlink(missing_ok=True)  # Delphes refuses to overwrite its output
        with log.open("w") as fh:
            rc, t = timed(
                [str(self.exe), str(card), str(out_root), str(hepmc)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=str(out_root.parent),
            )
        text = log.read_text(errors="replace")
        if rc != 0 or not out_root.exists():
            raise RuntimeError(f"Delphes failed (rc {rc}); last lines of {log}:\n{text[-2000:]}")
        bad = [ln for ln in text.splitlines() if "Error" in ln or "** ERROR" in ln]
        if bad:
            raise RuntimeError(f"Delphes printed errors ({log}):\n" + "\n".join(bad[:10]))
        return t


@dataclass(frozen=True)
class Timed:
    """Wall-clock and CPU (user + system, the child process) seconds of one command."""

    wall: float
    cpu: float


def timed(cmd: Sequence[str], **kwargs: Any) -> tuple[int, Timed]:
    """Run ``cmd`` (``subprocess.run`` keyword arguments); its return code and times. The
    CPU time is the child's (``RUSAGE_CHILDREN`` before and after), which a machine shared
    with other jobs inflates far less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    rc = subprocess.run(list(cmd), check=False, **kwargs).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, Timed(wall, cpu)


def find_delphes(delphes_dir: str | os.PathLike[str], root_env: str | None = None) -> Delphes:
    """The ``DelphesHepMC3`` of a build folder and the environment to run it.

    Arguments:
        delphes_dir: The Delphes build (holds ``DelphesHepMC3``, ``libDelphes.so`` and the
            ``*_rdict.pcm`` dictionaries).
        root_env: A Python environment with ROOT from the pip package ``root``: its
            ``ROOT/lib`` and ``root.libs`` go on ``LD_LIBRARY_PATH``. Without it, ROOT is
            taken from ``root-config --libdir`` on ``PATH`` (or the current
            ``LD_LIBRARY_PATH``).
    """
    d = Path(delphes_dir).resolve()
    exe = d / "DelphesHepMC3"
    if not exe.is_file():
        raise SystemExit(f"--delphes: no DelphesHepMC3 in {d} (build Delphes there first)")
    libs = [str(d)]
    if root_env:
        sites = sorted(glob.glob(os.path.join(root_env, "lib", "python3*", "site-packages")))
        if not sites or not Path(sites[0], "ROOT", "lib").is_dir():
            raise SystemExit(f"--root-env: no site-packages/ROOT/lib under {root_env}")
        libs += [str(Path(sites[0], "ROOT", "lib")), str(Path(sites[0], "root.libs"))]
    elif shutil.which("root-config"):
        out = subprocess.run(["root-config", "--libdir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            libs.append(out.stdout.strip())
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    # the dictionaries name their headers relative to the build (ExRootAnalysis/...): run
    # from another folder, cling prints "Missing FileEntry" autoload errors without this
    inc = [str(d), str(d / "external"), env.get("ROOT_INCLUDE_PATH", "")]
    env["ROOT_INCLUDE_PATH"] = os.pathsep.join(inc).rstrip(":")
    return Delphes(exe, env)


def write_hepmc3(particles: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Each row of a truth-particle table as one HepMC3 event (ASCII, GeV and mm): one
    final-state particle (status 1) with its momentum, mass and production vertex.

    A particle made at the origin is attached to the event's root vertex. Otherwise its
    production vertex is written as a primary vertex where two beam protons (status 4)
    meet: DelphesHepMC3 counts an event complete only once a particle attached to the root
    vertex has been read, so a vertex with no incoming particle would never close the event.

    Arguments:
        particles: A table of :func:`~ariasim.simulators.collider.particles.particle_table`
            (event_id, pdg, px/py/pz/e_gev, mass_gev, vx/vy/vz_mm).
        path: The ``.hepmc3`` file to write.
    """
    import pyhepmc

    cols = ["event_id", "pdg", "px_gev", "py_gev", "pz_gev", "e_gev", "mass_gev"]
    cols += ["vx_mm", "vy_mm", "vz_mm"]
    a = {c: particles[c].to_numpy() for c in cols}
    gev, mm = pyhepmc.Units.GEV, pyhepmc.Units.MM
    with pyhepmc.open(str(path), "w") as f:
        for k in range(len(particles)):
            ev = pyhepmc.GenEvent(gev, mm)
            ev.event_number = int(a["event_id"][k])
            p = pyhepmc.GenParticle(
                (
                    float(a["px_gev"][k]),
                    float(a["py_gev"][k]),
                    float(a["pz_gev"][k]),
                    float(a["e_gev"][k]),
                ),
                int(a["pdg"][k]),
                1,
            )
            p.generated_mass = float(a["mass_gev"][k])
            pos = (float(a["vx_mm"][k]), float(a["vy_mm"][k]), float(a["vz_mm"][k]))
            if any(pos):  # a primary vertex off the origin: two beams meet there
                v = pyhepmc.GenVertex((*pos, 0.0))
                for pz in (BEAM_GEV, -BEAM_GEV):
                    v.add_particle_in(pyhepmc.GenParticle((0.0, 0.0, pz, BEAM_GEV), 2212, 4))
                v.add_particle_out(p)
                ev.add_vertex(v)
            else:
                ev.add_particle(p)
            f.write(ev)
    return Path(path)


def truth_particles(full: pd.DataFrame) -> pd.DataFrame:
    """The truth particles of a full-simulation table as a truth-particle table (one row
    per particle, in order; production vertex on the beam line at ``truth_vz_mm``)."""
    pt, eta, phi = (full[c].to_numpy(float) for c in ("truth_pt_gev", "truth_eta", "truth_phi"))
    vz = full["truth_vz_mm"].to_numpy(float) if "truth_vz_mm" in full else np.zeros(len(full))
    return particle_table(
        full["event_id"].to_numpy(),
        full["pdg"].to_numpy(),
        pt * np.cos(phi),
        pt * np.sin(phi),
        pt * np.sinh(eta),
        e_gev=full["truth_e_gev"].to_numpy(float),
        vz_mm=vz,
    )


def read_delphes(root_file: str | os.PathLike[str], particles: pd.DataFrame) -> pd.DataFrame:
    """Delphes' output as a table with the full simulation's truth and reco columns.

    Event k of the file holds particle k of ``particles``; its ``Particle`` branch is checked
    against it (PDG code and pT). The reconstruction of a particle is the object in the
    branch of its type (``object_type`` that type, reco pT, eta, phi and E; electrons carry
    no E in Delphes' tree: E = pT cosh(eta), massless as Delphes' EnergySmearing makes it),
    ``object_type`` ``"none"`` if that branch is empty.
    """
    import awkward as ak
    import uproot

    with uproot.open(root_file) as f:
        tree = f["Delphes"]
        names = set(tree.keys(full_paths=False))
        gen = tree.arrays(["Particle.PID", "Particle.PT", "Particle.Status"])
        reco = {}
        for obj, br in BRANCHES.items():
            if f"{br}.PT" not in names:
                continue
            fields = [f"{br}.PT", f"{br}.Eta", f"{br}.Phi"]
            if f"{br}.E" in names:
                fields.append(f"{br}.E")
            reco[obj] = tree.arrays(fields)
    n = len(particles)
    if len(gen) != n:
        raise RuntimeError(f"{root_file}: {len(gen)} events, expected {n} (one per particle)")
    final = gen["Particle.Status"] == 1  # the beams of a displaced vertex have status 4
    if not (ak.to_numpy(ak.sum(final, axis=1)) == 1).all():
        raise RuntimeError(f"{root_file}: expected one final-state particle per event")
    pid = ak.to_numpy(ak.firsts(gen["Particle.PID"][final]))
    gpt = ak.to_numpy(ak.firsts(gen["Particle.PT"][final]))
    pdg = particles["pdg"].to_numpy()
    tpt = particles["pt_gev"].to_numpy(float)
    if not (np.array_equal(pid, pdg) and np.allclose(gpt, tpt, rtol=1e-5)):
        raise RuntimeError(f"{root_file}: the Particle branch does not match the truth order")
    otype = np.full(n, "none", dtype=object)
    cols = {c: np.full(n, np.nan) for c in ("reco_pt_gev", "reco_eta", "reco_phi", "reco_e_gev")}
    which = np.array([PDG_OBJECT.get(abs(int(p)), "") for p in pdg], dtype=object)
    for obj, arr in reco.items():
        br = BRANCHES[obj]
        has = ak.to_numpy(ak.num(arr[f"{br}.PT"])) > 0
        m = has & (which == obj)
        if not m.any():
            continue
        pt = ak.to_numpy(ak.fill_none(ak.firsts(arr[f"{br}.PT"]), np.nan)).astype(float)
        eta = ak.to_numpy(ak.fill_none(ak.firsts(arr[f"{br}.Eta"]), np.nan)).astype(float)
        phi = ak.to_numpy(ak.fill_none(ak.firsts(arr[f"{br}.Phi"]), np.nan)).astype(float)
        if f"{br}.E" in arr.fields:
            e = ak.to_numpy(ak.fill_none(ak.firsts(arr[f"{br}.E"]), np.nan)).astype(float)
        elif obj in ("muon", "charged_hadron"):
            mass = particles["mass_gev"].to_numpy(float)
            e = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
        else:
            e = pt * np.cosh(eta)
        otype[m] = obj
        for c, v in zip(cols, (pt, eta, phi, e), strict=True):
            cols[c][m] = v[m]
    return pd.DataFrame(
        {
            "event_id": particles["event_id"].to_numpy(),
            "pdg": pdg,
            "truth_pt_gev": tpt,
            "truth_eta": particles["eta"].to_numpy(float),
            "truth_e_gev": particles["e_gev"].to_numpy(float),
            "object_type": otype.astype(str),
            **cols,
        }
    )


# --------------------------------------------------------------------------- bin rule


def parse_part(text: str) -> tuple[int, int]:
    """``"I/K"`` (``--heldout-part``) as ``(I, K)`` with ``1 <= I <= K``; a one-line
    ``SystemExit`` naming the flag otherwise.

    Example:
        >>> parse_part("2/4")
        (2, 4)
    """
    try:
        i, k = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--heldout-part {text!r}: expected I/K, e.g. 1/4") from None
    if not 1 <= i <= k:
        raise SystemExit(f"--heldout-part {text!r}: need 1 <= I <= K")
    return i, k


def parse_objects(text: str) -> list[str]:
    """``--objects`` (comma list of :data:`PDG_OBJECT`'s objects) as a list, in the
    order of :data:`RULE`; a one-line ``SystemExit`` for an unknown or empty list."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    known = list(PDG_OBJECT.values())
    bad = [x for x in names if x not in known]
    if bad or not names:
        raise SystemExit(f"--objects {text!r}: expected a comma list of {', '.join(known)}")
    return [o for o, _ in RULE if o in names]


def judged_sample(
    table: pd.DataFrame,
    *,
    source: str,
    heldout: bool,
    part: tuple[int, int] | None = None,
    objects: Sequence[str] = tuple(PDG_OBJECT.values()),
) -> pd.DataFrame:
    """The full-simulation particles the rule judges: the odd events of the fit's table
    (``heldout`` False), or every event of an independent table (``heldout`` True),
    optionally only part ``I`` of ``K`` (events with ``event_id % K == I - 1``); only the
    particles of ``objects``. A one-line ``SystemExit`` naming ``source`` if an object has
    no particle there.
    """
    if heldout:
        if part is not None:
            if "event_id" not in table.columns:
                raise SystemExit(f"{source}: --heldout-part needs an event_id column")
            i, k = part
            table = table.loc[table["event_id"].to_numpy(np.int64) % k == i - 1]
    else:
        table = select_events(table, "odd", source=source)
    codes = [c for c, o in PDG_OBJECT.items() if o in objects]
    pdg = np.abs(table["pdg"].to_numpy())
    for c in codes:
        if not np.any(pdg == c):
            what = f"part {part[0]}/{part[1]}" if part else "the judged events"
            raise SystemExit(f"{source}: no {PDG_OBJECT[c]} particles in {what} (--objects)")
    return table.loc[np.isin(pdg, codes)].reset_index(drop=True)


def width68(r: np.ndarray) -> float:
    """Half the 16-84 % interval of ``r`` (the Gaussian sigma for a Gaussian)."""
    q16, q84 = np.quantile(r, [0.15865525393145707, 0.8413447460685429])
    return float(0.5 * (q84 - q16))


def _sample(table: pd.DataFrame, obj: str, quantity: str) -> pd.DataFrame:
    """Truth pT, |eta|, passed (reconstructed as ``obj``) and reco/truth of ``quantity``."""
    pdg = np.abs(table["pdg"].to_numpy())
    code = {v: k for k, v in PDG_OBJECT.items()}[obj]
    t = table.loc[pdg == code]
    reco, truth = (
        ("reco_pt_gev", "truth_pt_gev") if quantity == "pt" else ("reco_e_gev", "truth_e_gev")
    )
    passed = (t["object_type"].astype(str) == obj).to_numpy().copy()
    with np.errstate(all="ignore"):
        ratio = t[reco].to_numpy(float) / t[truth].to_numpy(float)
    passed &= np.isfinite(ratio) & (np.nan_to_num(ratio) > 0)
    return pd.DataFrame(
        {
            "pt": t["truth_pt_gev"].to_numpy(float),
            "abseta": np.abs(t["truth_eta"].to_numpy(float)),
            "passed": passed,
            "ratio": np.where(passed, ratio, np.nan),
        }
    )


def bin_rule(
    full: pd.DataFrame,
    delphes: pd.DataFrame,
    obj: str,
    quantity: str,
    *,
    pt_edges: Sequence[float] = PT_EDGES,
    eta_edges: Sequence[float] = ETA_EDGES,
) -> pd.DataFrame:
    """The issue-14 rule per truth-pT x |eta| bin for one object: one row per bin with the
    efficiencies, 68 % widths and medians of reco/truth of both samples and the verdicts.

    Width: ``|w_delphes / w_full - 1| <= 0.15`` where both samples have >= :data:`MIN_RECO`
    reconstructed objects (``width_ok`` None otherwise). Efficiency:
    ``|e_d - e_f| <= max(0.02, 3 sqrt(v_d + v_f))``, binomial variances with the
    ``(k + 1/2) / (n + 1)`` estimate (finite at 0 and 1).
    """
    a, b = _sample(full, obj, quantity), _sample(delphes, obj, quantity)
    rows = []
    for i in range(len(pt_edges) - 1):
        for j in range(len(eta_edges) - 1):

            def sel(d: pd.DataFrame, i: int = i, j: int = j) -> pd.DataFrame:
                m = (d["pt"] >= pt_edges[i]) & (d["pt"] < pt_edges[i + 1])
                m &= (d["abseta"] >= eta_edges[j]) & (d["abseta"] < eta_edges[j + 1])
                return d.loc[m]

            A, B = sel(a), sel(b)
            row: dict[str, Any] = {
                "object": obj,
                "quantity": quantity,
                "pt_low": pt_edges[i],
                "pt_high": pt_edges[i + 1],
                "eta_low": eta_edges[j],
                "eta_high": eta_edges[j + 1],
                "n_full": len(A),
                "n_delphes": len(B),
            }
            if len(A) == 0 or len(B) == 0:
                row.update(eff_ok=False, width_ok=None, passed=False, note="empty")
                rows.append(row)
                continue
            ka, kb = int(A["passed"].sum()), int(B["passed"].sum())
            ea, eb = ka / len(A), kb / len(B)
            pa, pb = (ka + 0.5) / (len(A) + 1.0), (kb + 0.5) / (len(B) + 1.0)
            sig = math.sqrt(pa * (1 - pa) / len(A) + pb * (1 - pb) / len(B))
            eff_ok = abs(eb - ea) <= max(EFF_ABS, EFF_SIGMAS * sig)
            row.update(
                eff_full=ea,
                eff_delphes=eb,
                eff_sigma=sig,
                eff_ok=bool(eff_ok),
                reco_full=ka,
                reco_delphes=kb,
            )
            width_ok = None
            if ka >= MIN_RECO and kb >= MIN_RECO:
                ra, rb = A["ratio"].to_numpy()[A["passed"]], B["ratio"].to_numpy()[B["passed"]]
                wa, wb = width68(ra), width68(rb)
                width_ok = bool(abs(wb / wa - 1.0) <= WIDTH_TOL) if wa > 0 else False
                row.update(
                    width_full=wa,
                    width_delphes=wb,
                    width_ratio=wb / wa if wa > 0 else math.inf,
                    median_full=float(np.median(ra)),
                    median_delphes=float(np.median(rb)),
                )
            row.update(
                width_ok=width_ok,
                passed=bool(eff_ok and width_ok is not False),
                note="" if width_ok is not None else f"< {MIN_RECO} reco: efficiency only",
            )
            rows.append(row)
    return pd.DataFrame(rows)


def print_rule(rows: pd.DataFrame, *, label: str) -> None:
    """One grid per object: the Delphes/full width ratio per bin and the failures
    (``w`` width, ``e`` efficiency, ``*`` efficiency-only bin)."""
    for (obj, q), g in rows.groupby(["object", "quantity"], sort=False):
        n_pass, n = int(g["passed"].sum()), len(g)
        tag = " (information)" if (obj, q) in INFO else ""
        print(f"\n{label}: {obj} ({q}){tag}: {n_pass}/{n} bins pass")
        heads = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(PT_EDGES)]
        corner = "|eta| / pT"
        print(f"  {corner:11s}" + " ".join(f"{h:>11s}" for h in heads))
        for j in range(len(ETA_EDGES) - 1):
            cells = []
            for i in range(len(PT_EDGES) - 1):
                r = g[(g["pt_low"] == PT_EDGES[i]) & (g["eta_low"] == ETA_EDGES[j])].iloc[0]
                wr = r.get("width_ratio", np.nan)
                # width_ok is a bool column (np.bool_) when every bin was judged on width
                judged = r["width_ok"] is not None and not pd.isna(r["width_ok"])
                mark = ("" if r["eff_ok"] else "e") + ("w" if judged and not r["width_ok"] else "")
                mark += "" if judged else "*"
                txt = f"{wr:.2f}" if isinstance(wr, float) and np.isfinite(wr) else "-"
                cells.append(f"{txt + (' ' + mark if mark else ''):>11s}")
            print(f"  {ETA_EDGES[j]:g}-{ETA_EDGES[j + 1]:g}".ljust(13) + " ".join(cells))


def summarise(rows: pd.DataFrame, *, label: str) -> list[dict[str, Any]]:
    """Passes per object and quantity (all bins, efficiency, width where judged), printed."""
    out = []
    heads = f"{'bins pass':>9s} {'eff pass':>9s} {'width pass':>10s}"
    print(f"\n{label}: {'object (quantity)':26s} {heads}")
    for (o, q), g in rows.groupby(["object", "quantity"], sort=False):
        s = {
            "object": o,
            "quantity": q,
            "judged": (o, q) in RULE,
            "bins": len(g),
            "pass": int(g["passed"].sum()),
            "eff_pass": int(g["eff_ok"].sum()),
            "width_pass": int((g["width_ok"] == True).sum()),  # noqa: E712
            "width_judged": int(g["width_ok"].notna().sum()),
        }
        out.append(s)
        tag = f"{o} ({q})" + ("" if s["judged"] else " info")
        print(
            f"{'':{len(label) + 2}s}{tag:26s} {s['pass']:>4d}/{s['bins']:<4d} "
            f"{s['eff_pass']:>4d}/{s['bins']:<4d} {s['width_pass']:>5d}/{s['width_judged']:<4d}"
        )
    return out


# --------------------------------------------------------------------------- timing


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(":")
    for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = "1"
    return env


def run_fastsim(response: Path, parquet: Path, out: Path, seed: int) -> Timed:
    """Wall and CPU seconds of the whole ``ariasim fastsim`` command (interpreter start
    included)."""
    cmd = [sys.executable, "-m", "ariasim", "fastsim", "--response", str(response)]
    cmd += ["--input", str(parquet), "--out", str(out), "--seed", str(seed), "--overwrite"]
    with tempfile.TemporaryFile("w+") as err:
        rc, t = timed(cmd, stdout=subprocess.DEVNULL, stderr=err, env=_python_env())
        if rc != 0:
            err.seek(0)
            raise RuntimeError(f"ariasim fastsim failed (rc {rc}):\n{err.read()[-2000:]}")
    return t


def export_card(response: Path, card: Path, modules: Path) -> None:
    """``ariasim export delphes RESPONSE --out card --modules-out modules`` (the command)."""
    cmd = [sys.executable, "-m", "ariasim", "export", "delphes", str(response)]
    cmd += ["--out", str(card), "--modules-out", str(modules), "--overwrite"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_python_env(), check=False)
    if r.returncode != 0:
        raise RuntimeError(f"ariasim export delphes failed:\n{r.stderr[-2000:]}")


def timing(
    response: Path,
    work: Path,
    sizes: Sequence[int],
    repeat: int,
    delphes: Delphes | None,
    card: Path,
) -> list[dict[str, Any]]:
    """Whole commands side by side, alternating which runs first; one row per size with
    the wall and CPU seconds of every run, their medians and the ratios Delphes / ariasim."""
    gun = ParticleGun(SPECIES, 1.0, 300.0, log_pt=True)
    rows = []
    for n in sizes:
        parts = gun.generate(n, 1000 + n)
        pq = write_table(parts, work / f"particles_{n}.parquet", producer="bench_delphes")
        hep = None
        if delphes is not None:
            t0 = time.perf_counter()
            hep = write_hepmc3(parts, work / f"particles_{n}.hepmc3")
            print(f"  wrote {n} HepMC3 events in {time.perf_counter() - t0:.1f} s (not timed)")
        t_a: list[Timed] = []
        t_d: list[Timed] = []
        for k in range(repeat):
            order = ("a", "d") if k % 2 == 0 else ("d", "a")
            for who in order:
                if who == "a":
                    t_a.append(run_fastsim(response, pq, work / f"fast_{n}.parquet", k + 1))
                elif delphes is not None and hep is not None:
                    t_d.append(
                        delphes.run(card, hep, work / f"delphes_{n}.root", work / "delphes_t.log")
                    )
        row: dict[str, Any] = {"particles": n}
        for who, ts in (("ariasim", t_a), ("delphes", t_d)):
            if ts:
                row[f"{who}_wall_s"] = [t.wall for t in ts]
                row[f"{who}_cpu_s"] = [t.cpu for t in ts]
                row[f"{who}_wall_median_s"] = statistics.median(row[f"{who}_wall_s"])
                row[f"{who}_cpu_median_s"] = statistics.median(row[f"{who}_cpu_s"])
        if t_d:
            for w in ("wall", "cpu"):
                row[f"ratio_{w}_delphes_over_ariasim"] = (
                    row[f"delphes_{w}_median_s"] / row[f"ariasim_{w}_median_s"]
                )
        rows.append(row)
        for w in ("wall", "cpu"):
            msg = (
                f"  {n:>8d} particles, {w:4s}: ariasim fastsim {row[f'ariasim_{w}_median_s']:.2f} s"
            )
            if t_d:
                msg += (
                    f", Delphes {row[f'delphes_{w}_median_s']:.2f} s, Delphes / ariasim "
                    f"{row[f'ratio_{w}_delphes_over_ariasim']:.2f}"
                )
            msg += f"  (medians; runs: ariasim {_fmt(row[f'ariasim_{w}_s'])}"
            print(msg + (f"; Delphes {_fmt(row[f'delphes_{w}_s'])})" if t_d else ")"))
    return rows


def _fmt(ts: Sequence[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in ts)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--delphes", default=None, help="Delphes build folder (the anchor)")
    ap.add_argument("--root-env", default=None, help="venv with ROOT from the pip package root")
    ap.add_argument("--full", default=None, help="full-simulation table (.parquet)")
    ap.add_argument(
        "--heldout",
        default=None,
        help="judge every event of this independent full-simulation table (.parquet) "
        "instead of the odd events of --full",
    )
    ap.add_argument(
        "--heldout-part",
        default=None,
        help="I/K: judge only the events of --heldout with event_id %% K == I - 1",
    )
    ap.add_argument(
        "--objects",
        default=",".join(o for o, _ in RULE),
        help="comma list of the objects judged (default: all four)",
    )
    ap.add_argument("--response", required=True, help="response model JSON (fitted on even events)")
    ap.add_argument("--json", default=None, help="write the results here (.json)")
    ap.add_argument("--sizes", default="20000,200000", help="particles per timing (comma list)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each command per size")
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=1, help="seed of ariasim's fast simulation")
    ap.add_argument(
        "--max-events", type=int, default=None, help="cap on held-out events for the bin rule"
    )
    ap.add_argument(
        "--delphes-seed",
        type=int,
        default=0,
        help="Delphes' RandomSeed for the held-out run (0: Delphes' default, a new seed from "
        "the clock each run; N > 0: 'set RandomSeed N' in a copy of the card, reproducible)",
    )
    args = ap.parse_args(argv)
    if args.heldout and args.full:
        ap.error("give --full (its odd events are judged) or --heldout, not both")
    if args.heldout_part and not args.heldout:
        ap.error("--heldout-part needs --heldout")
    part = parse_part(args.heldout_part) if args.heldout_part else None
    objects = parse_objects(args.objects)
    judged = args.heldout or args.full
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    response = Path(args.response).resolve()
    tmp = None
    if args.work:
        work = Path(args.work).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_delphes_")
        work = Path(tmp.name)
    delphes = find_delphes(args.delphes, args.root_env) if args.delphes else None
    result: dict[str, Any] = {"response": str(response), "pt_edges": PT_EDGES}
    result["eta_edges"] = ETA_EDGES
    card, modules = work / "card.tcl", work / "modules.tcl"
    export_card(response, card, modules)
    print(f"(a) exported {card} and {modules} with 'ariasim export delphes'")
    if delphes is None:
        print(
            "no Delphes anchor (--delphes not given): only ariasim's side runs (its fast "
            "simulation under the bin rule, and its timing)"
        )
    if judged:
        full = judged_sample(
            read_table(judged),
            source=judged,
            heldout=bool(args.heldout),
            part=part,
            objects=objects,
        )
        what = "odd events" if not args.heldout else f"{Path(judged).name}"
        what += f", part {part[0]}/{part[1]}" if part else ""
        if args.max_events:
            full = full.iloc[: args.max_events].reset_index(drop=True)
        parts = truth_particles(full)
        tables = {"ariasim fastsim": fastsim(full, ResponseModel.load(response), args.seed)}
        if delphes is not None:
            t0 = time.perf_counter()
            hep = write_hepmc3(parts, work / "heldout.hepmc3")
            print(
                f"(b) {len(parts)} held-out particles ({what}) as HepMC3 events "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            run_card = card
            if args.delphes_seed:  # Delphes seeds gRandom from the clock unless told
                run_card = work / "card_seeded.tcl"
                run_card.write_text(
                    card.read_text() + f"\nset RandomSeed {int(args.delphes_seed)}\n"
                )
            dt = delphes.run(run_card, hep, work / "heldout.root", work / "delphes_heldout.log")
            print(f"(c) Delphes ran the card in {dt.wall:.1f} s ({dt.cpu:.1f} s CPU)")
            tables["Delphes"] = read_delphes(work / "heldout.root", parts)
            print("(d) read Delphes' tree with uproot, event k = particle k (Particle checked)")
        print(
            f"(e) bin rule on {len(parts)} held-out particles: width68 of reco/truth within "
            f"{WIDTH_TOL:.0%} and efficiency within {EFF_SIGMAS:g} sigma or {EFF_ABS}; pT "
            f"edges {PT_EDGES} GeV, |eta| edges {ETA_EDGES}; cells: width ratio (sample / "
            f"full), e = efficiency fails, w = width fails, * = < {MIN_RECO} reco (efficiency "
            "only)"
        )
        result.update(full=str(Path(judged).resolve()), n_heldout=len(parts), rule={})
        result.update(heldout=bool(args.heldout), heldout_part=args.heldout_part)
        result["delphes_seed"] = args.delphes_seed
        judge = [(o, q) for o, q in (*RULE, *INFO) if o in objects]
        for label, tab in tables.items():
            rows = pd.concat([bin_rule(full, tab, o, q) for o, q in judge], ignore_index=True)
            print_rule(rows, label=f"{label} vs full")
            summary = summarise(rows, label=f"{label} vs full")
            result["rule"][label] = {
                "summary": summary,
                "bins": rows.astype(object).where(rows.notna(), None).to_dict(orient="records"),
            }
    else:
        print("neither --full nor --heldout given: the bin rule is skipped")
    print(
        f"(f) whole commands, start-up included, {args.repeat} alternating runs per size "
        f"(1 thread each; particles: {SPECIES}, pT log-flat 1-300 GeV, |eta| < 2.5):"
    )
    result["timing"] = timing(response, work, sizes, args.repeat, delphes, card)
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
