"""Validation report: resolutions and efficiencies vs pT and eta with analytic expectations.

Plots (PNG) and one self-contained HTML page (images embedded as base64):

* track sigma(pT)/pT vs pT in |eta| bins and vs eta, with the Gluckstern + Highland
  expectation of the configured tracker overlaid (:func:`.tracking.expected_pt_resolution`);
* ECAL sigma(E)/E vs E for electrons and photons with ``a/sqrt(E) (+) b/E`` predicted from
  the configured ECAL: photostatistics ``sqrt(F / N_pe)`` (homogeneous) or the sampling term
  of :func:`.calorimeter.expected_sampling_term` (sampling), and the noise of a 3x3 cell sum;
* reconstruction and identification efficiency vs pT and eta per species.

References:
    Gluckstern, NIM 24 (1963) 381; Highland, NIM 129 (1975) 497; R. Wigmans, Calorimetry (2017).

Arguments:
    See :func:`make_report`.
"""

from __future__ import annotations

import base64
import html
import itertools
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ariasim.simulators.collider.detector import DetectorConfig, load_detector
from ariasim.simulators.collider.tracking import expected_pt_resolution

__all__ = ["expected_ecal_resolution", "make_report"]

_EXPECTED_TYPE = {
    11: "electron",
    22: "photon",
    13: "muon",
    211: "charged_hadron",
    321: "charged_hadron",
    2212: "charged_hadron",
    2112: "neutral_hadron",
    130: "neutral_hadron",
}


def expected_ecal_resolution(detector: DetectorConfig, e_gev: np.ndarray) -> np.ndarray:
    """Predicted sigma(E)/E of the ECAL: a/sqrt(E) (+) b/E from the configured calorimeter.

    Arguments:
        detector: Detector configuration.
        e_gev: Energies [GeV].
    """
    ecal = detector.ecal
    e = np.asarray(e_gev, dtype=float)
    if ecal.kind == "sampling":
        from ariasim.simulators.collider.calorimeter import expected_sampling_term

        a2 = expected_sampling_term(ecal)["model"] ** 2
        if ecal.photoelectrons_per_gev > 0:
            a2 += ecal.excess_noise_factor / ecal.photoelectrons_per_gev
    else:
        a2 = (
            ecal.excess_noise_factor / ecal.photoelectrons_per_gev
            if ecal.photoelectrons_per_gev > 0
            else 0.0
        )
    b = ecal.noise_gev * 3.0  # noise of a 3x3 cell sum
    return np.sqrt(a2 / e + (b / e) ** 2)


def _binned_sigma(x: np.ndarray, rel: np.ndarray, edges: np.ndarray, min_n: int = 30):
    centers, sig, err = [], [], []
    for lo, hi in itertools.pairwise(edges):
        m = (x >= lo) & (x < hi) & np.isfinite(rel)
        if m.sum() < min_n:
            continue
        r = rel[m]
        med = np.median(r)
        s = 1.4826 * np.median(np.abs(r - med))  # robust: brems and interaction tails
        centers.append(math.sqrt(lo * hi) if lo > 0 else 0.5 * (lo + hi))
        sig.append(s)
        err.append(s / math.sqrt(2 * m.sum()))
    return np.array(centers), np.array(sig), np.array(err)


def _eff(x: np.ndarray, ok: np.ndarray, edges: np.ndarray):
    c, p, e = [], [], []
    for lo, hi in itertools.pairwise(edges):
        m = (x >= lo) & (x < hi)
        n = m.sum()
        if n < 10:
            continue
        k = ok[m].mean()
        c.append(0.5 * (lo + hi))
        p.append(k)
        e.append(math.sqrt(max(k * (1 - k), 1.0 / n) / n))
    return np.array(c), np.array(p), np.array(e)


def make_report(
    table: pd.DataFrame, detector: str | DetectorConfig, out_dir: str | os.PathLike[str]
) -> Path:
    """Write PNG plots and ``report.html`` for a simulated table.

    Arguments:
        table: Output of :func:`~ariasim.simulators.collider.simulate.simulate`.
        detector: The detector it was simulated with.
        out_dir: Output folder (created).

    Returns:
        Path of the HTML file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ariasim.utils import atomic_path, ensure_dir

    det = load_detector(detector)
    out = ensure_dir(out_dir)
    figs: list[tuple[str, str, str]] = []

    def save(fig, name: str, title: str, text: str) -> None:
        path = out / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        figs.append((title, text, base64.b64encode(path.read_bytes()).decode()))

    t = table
    apdg = t["pdg"].abs().to_numpy()
    trk = t[t["track_found"].to_numpy() & np.isin(apdg, [13, 211, 321, 2212])]
    # ---- track pT resolution vs pT
    if len(trk) > 50:
        rel = (
            trk["track_charge"] / trk["track_pt_gev"] - trk["truth_charge"] / trk["truth_pt_gev"]
        ).to_numpy() * trk["truth_pt_gev"].to_numpy()
        pt = trk["truth_pt_gev"].to_numpy()
        aeta = trk["truth_eta"].abs().to_numpy()
        edges = np.geomspace(max(pt.min(), 0.1), pt.max() * 1.0001, 13)
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for (lo, hi), col in zip(
            [(0.0, 0.5), (0.8, 1.2), (1.6, 2.4)], ["C0", "C1", "C2"], strict=True
        ):
            m = (aeta >= lo) & (aeta < hi)
            c, s, e = _binned_sigma(pt[m], rel[m], edges)
            if c.size:
                ax.errorbar(c, s, e, fmt="o", color=col, label=f"simulated {lo} < |eta| < {hi}")
            grid = np.geomspace(edges[0], edges[-1], 60)
            ax.plot(
                grid,
                expected_pt_resolution(det, grid, 0.5 * (lo + hi))["total"],
                "-",
                color=col,
                label=f"Gluckstern+Highland, |eta| = {0.5 * (lo + hi):.1f}",
            )
        ax.set(xscale="log", yscale="log", xlabel="pT [GeV]", ylabel="sigma(pT)/pT")
        ax.legend(fontsize=7)
        save(
            fig,
            "track_pt_resolution_vs_pt",
            "Track pT resolution vs pT",
            "Points: robust width of (q/pT) residuals x pT of simulated tracks (muons, hadrons). "
            "Lines: Gluckstern measurement term for the configured layers combined with the "
            "Highland "
            "multiple-scattering term.",
        )
        fig, ax = plt.subplots(figsize=(6, 4.2))
        eedges = np.linspace(0.0, 2.6, 14)
        for (lo, hi), col in zip(
            [(1.0, 5.0), (20.0, 100.0), (100.0, 1e4)], ["C0", "C1", "C2"], strict=True
        ):
            m = (pt >= lo) & (pt < hi)
            if m.sum() < 50:
                continue
            c, s, e = _binned_sigma(aeta[m], rel[m], eedges)
            ax.errorbar(c, s, e, fmt="o", color=col, label=f"simulated {lo:g} < pT < {hi:g} GeV")
            ptc = float(np.median(pt[m]))
            grid = np.linspace(0.0, 2.6, 40)
            ax.plot(
                grid,
                [expected_pt_resolution(det, ptc, g)["total"][0] for g in grid],
                "-",
                color=col,
                label=f"expected, pT = {ptc:.0f} GeV",
            )
        ax.set(yscale="log", xlabel="|eta|", ylabel="sigma(pT)/pT")
        ax.legend(fontsize=7)
        save(
            fig,
            "track_pt_resolution_vs_eta",
            "Track pT resolution vs |eta|",
            "Shorter lever arm (outer layers end at |eta| ~ 1.7) and more material (1/sin theta) "
            "degrade the resolution forward.",
        )
    # ---- ECAL resolution
    em = t[
        (apdg == 22)
        & (t["object_type"] == "photon").to_numpy()
        & (t["converted_layer"] < 0).to_numpy()
        & (t["truth_eta"].abs() < 1.4).to_numpy()
    ]
    if len(em) > 50:
        e = em["truth_e_gev"].to_numpy()
        rel = em["reco_e_gev"].to_numpy() / e - 1.0
        edges = np.geomspace(max(e.min(), 0.5), e.max() * 1.0001, 12)
        c, s, err = _binned_sigma(e, rel, edges)
        fig, ax = plt.subplots(figsize=(6, 4.2))
        ax.errorbar(
            c, s, err, fmt="o", label="simulated unconverted photons (|eta| < 1.4, robust width)"
        )
        grid = np.geomspace(edges[0], edges[-1], 60)
        ax.plot(
            grid,
            expected_ecal_resolution(det, grid),
            "-",
            label="a/sqrt(E) + b/E from the ECAL config",
        )
        ax.set(xscale="log", yscale="log", xlabel="E [GeV]", ylabel="sigma(E)/E")
        ax.legend(fontsize=7)
        save(
            fig,
            "ecal_resolution_vs_e",
            "ECAL energy resolution",
            "Unconverted photons; electrons and converted photons also lose energy in the tracker "
            "material. "
            "The constant term (leakage, containment in the cluster) is not in the expectation "
            "line.",
        )
    # ---- efficiencies
    expected = np.array([_EXPECTED_TYPE.get(int(p), "") for p in apdg])
    ok_id = t["object_type"].to_numpy() == expected
    species = sorted(set(apdg.tolist()) & set(_EXPECTED_TYPE))
    if species:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        pt = t["truth_pt_gev"].to_numpy()
        eta = t["truth_eta"].to_numpy()
        pedges = np.geomspace(max(pt.min(), 0.05), pt.max() * 1.0001, 14)
        eedges = np.linspace(eta.min(), eta.max() + 1e-9, 16)
        for k, sp in enumerate(species):
            m = apdg == sp
            col = f"C{k}"
            c, p, e = _eff(pt[m], ok_id[m], pedges)
            axes[0].errorbar(
                c, p, e, fmt="o-", color=col, label=f"|pdg| {sp}: {_EXPECTED_TYPE[sp]}"
            )
            c, p, e = _eff(eta[m], ok_id[m], eedges)
            axes[1].errorbar(c, p, e, fmt="o-", color=col, label=f"|pdg| {sp}")
        axes[0].set(
            xscale="log", xlabel="truth pT [GeV]", ylabel="identified as itself", ylim=(-0.02, 1.05)
        )
        axes[1].set(xlabel="truth eta", ylabel="identified as itself", ylim=(-0.02, 1.05))
        axes[0].legend(fontsize=7)
        save(
            fig,
            "efficiency",
            "Reconstruction and identification efficiency",
            "Plateaus set by hit efficiency and nuclear interactions; zero beyond the "
            "tracker/calorimeter "
            "acceptance and for loopers / muons that range out before the muon stations.",
        )
    counts = pd.crosstab(t["pdg"], t["object_type"], normalize="index").round(3)
    body = [
        f"<h1>ariasim collider report: {html.escape(det.name)}</h1>",
        f"<p>{html.escape(det.description)}; {len(t)} truth particles.</p>",
        "<h2>Object type per species (fractions)</h2>",
        counts.to_html(),
    ]
    for title, text, b64 in figs:
        body.append(
            f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>"
            f"<img src='data:image/png;base64,{b64}'/>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>ariasim collider report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    target = out / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target
