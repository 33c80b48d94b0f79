"""Benchmark: ariasim's photon MC against IceCube's PPC in IceCube's ice (issue 15).

Side by side, in one run, on the same configuration: PPC's ``spice_bfr-v2`` ice folder
(layered SPICE tables, layer tilt, absorption anisotropy, birefringence), an isotropic
flasher on module 9 of string 1 (depth 2150 m, at (360, 360) m where the tilt shifts the
layers by 7 m), 17 modules 5 m apart on that string and on two strings 20 m away, one
along the ice-flow axis (130 deg) and one across it; true-size modules (r = 0.1651 m,
PPC's oversize set to 1, flat angular acceptance, no wavelength acceptance); wavelengths
394-404 nm (PPC's WFLA-free wv.dat of 395-405 nm, read one 1-nm bin low). The photons
start on the flasher's surface at t = r/c as in PPC; photons that come back into the
flasher end there in both codes.

Configurations (PPC reads the same folders as ariasim's :func:`ppc_ice`):

* ``homogeneous``: one layer (the table's layer at the flasher), no effects;
* ``layered``: the SPICE layers, no tilt, anisotropy or birefringence;
* ``full``: spice_bfr-v2 as shipped (tilt, absorption anisotropy, birefringence);
* ``notilt`` / ``noaniso`` / ``nobfr``: full with one effect off (files removed or zeroed
  in cfg.txt, as PPC switches them);
* ``homogeneous-bfr``: the one layer with birefringence only (its strength ra = 1).

Compared per module ("level", 50 modules with at least 20 hits): kernel hits (chi2 of the
two counts, equal photon numbers), and the 10/50/90 % arrival-time quantiles (difference
PPC - ariasim, bootstrap errors; printed: the mean over levels and the chi2 over levels).
The last line compares PPC in full ice with ariasim without the effects (the gap they
close). ``--reuse`` takes PPC's and ariasim's hits from earlier runs in ``--work``.
Speed: photons per CPU-second, one thread each, PPC's start-up (a run of 1e4 photons)
subtracted, ariasim's kernel time (compilation excluded).

PPC must print its kernel hits (before the wavelength and angular acceptance of its HIT
lines, which also drop about 1 % of hits): ``--build-ppc SRC DEST`` copies PPC's ``gpu``
folder, adds one line to ``f2k.cxx`` (with ``KHITS`` set, every kernel hit is printed as
``KHIT string module time wavelength``) and runs ``make cpu``.

Usage::

    python benchmarks/bench_ppc_ice.py --build-ppc /path/to/ppc/gpu /tmp/ppc-khits
    python benchmarks/bench_ppc_ice.py --ppc /tmp/ppc-khits/ppc \
        --ice /path/to/ppc/ice/spice_bfr-v2 --work /tmp/ppc-ice --photons 8e6

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC),
    https://github.com/icecube/ppc.
    D. Chirkin and M. Rongen, "Light diffusion in birefringent polycrystals and the IceCube
    ice anisotropy", PoS(ICRC2019)854, arXiv:1908.07608.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from ariasim.simulators.photons import Detector, simulate
from ariasim.simulators.photons.ice_effects import ppc_ice
from ariasim.simulators.photons.optics import DEPTH_ORIGIN_M, DOM_RADIUS_M, SPEED_OF_LIGHT_M_PER_NS
from ariasim.simulators.photons.sources import isotropic_directions

CONFIGS = ("homogeneous", "layered", "full", "notilt", "noaniso", "nobfr", "homogeneous-bfr")
FLASHER = (1, 9)
X0, Y0 = 360.0, 360.0
STRING_OFFSET_M = 20.0
DEPTHS_M = 2110.0 + 5.0 * np.arange(17)
WAVELENGTHS_NM = (394.0, 404.0)
QUANTILES = (0.1, 0.5, 0.9)
KHIT_PATCH = (
    '    { static int kh=getenv("KHITS")!=NULL; if(kh){ printf("KHIT %d %d %f %f\\n", '
    "n.str, n.dom, h.t, q.wvs[h.z].w); continue; } }\n"
)


def build_ppc(src: Path, dest: Path) -> Path:
    """Copy PPC's gpu folder, add the kernel-hit printout, build the CPU executable."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    f2k = dest / "f2k.cxx"
    text = f2k.read_text()
    anchor = "    bool flag=n.hv>0;\n"
    if text.count(anchor) != 1:
        raise SystemExit(f"cannot find the print loop in {f2k}")
    f2k.write_text(text.replace(anchor, anchor + KHIT_PATCH))
    subprocess.run(["make", "cpu"], cwd=dest, check=True)
    return dest / "ppc"


def geometry() -> list[tuple[int, int, float, float, float]]:
    """(string, module, x, y, depth) of the three strings."""
    out = []
    for s, az in ((1, None), (2, 130.0), (3, 40.0)):
        x, y = X0, Y0
        if az is not None:
            x += STRING_OFFSET_M * math.cos(math.radians(az))
            y += STRING_OFFSET_M * math.sin(math.radians(az))
        for k, d in enumerate(DEPTHS_M, start=1):
            out.append((s, k, round(x, 2), round(y, 2), float(d)))
    return out


def write_tables(ice: Path, work: Path, config: str) -> Path:
    """A PPC tables folder for one configuration."""
    d = work / f"tab_{config}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in ("icemodel.par", "icemodel.bbl", "rnd.txt"):
        if (ice / f).exists():
            shutil.copy(ice / f, d / f)
    lines = (ice / "icemodel.dat").read_text().splitlines()
    if config.startswith("homogeneous"):
        rows = [ln.split() for ln in lines if ln.strip()]
        depth_f = DEPTHS_M[FLASHER[1] - 1]
        best = min(rows, key=lambda r: abs(float(r[0]) - depth_f))
        lines = [" ".join(best[:4])]
    (d / "icemodel.dat").write_text("\n".join(lines) + "\n")
    if config in ("full", "noaniso", "nobfr"):
        for f in ("tilt.par", "tilt.dat"):
            shutil.copy(ice / f, d / f)
    cfg = (ice / "cfg.txt").read_text().splitlines()
    num = [i for i, ln in enumerate(cfg) if ln.split() and _is_number(ln.split()[0])]
    cfg[num[0]] = "1     # over-R: true-size modules for this comparison"
    if config in ("homogeneous", "homogeneous-bfr", "layered", "noaniso"):
        for j in (12, 13, 14):
            cfg[num[j]] = "0.0   # absorption anisotropy off"
    if config in ("homogeneous", "layered", "nobfr"):
        drop = set(num[16:28])
        cfg = [ln for i, ln in enumerate(cfg) if i not in drop]
    (d / "cfg.txt").write_text("\n".join(cfg) + "\n")
    (d / "as.dat").write_text("1\n1\n")  # flat angular sensitivity
    lo, hi = WAVELENGTHS_NM[0] + 1.0, WAVELENGTHS_NM[1] + 1.0  # PPC reads one bin low
    (d / "wv.dat").write_text(
        "".join(f"{i / 100:.6f} {lo + (hi - lo) * i / 100:.4f}\n" for i in range(101))
    )
    (d / "geo-f2k").write_text(
        "".join(
            f"M{s}_{k}\t0x{s * 100 + k:012x}\t{x:.2f}\t{y:.2f}\t{-dep:.2f}\t{s}\t{k}\n"
            for s, k, x, y, dep in geometry()
        )
    )
    return d


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def run_ppc(ppc: Path, tables: Path, n: float, out: Path) -> float:
    """Run PPC's flasher; returns its CPU time [s] (user + system)."""
    env = dict(os.environ, PPCTABLESDIR=f"{tables}/", FWID="-1", KHITS="1")
    env.pop("WFLA", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as fo, open(out.with_suffix(".err"), "w") as fe:
        subprocess.run(
            [str(ppc), str(FLASHER[0]), str(FLASHER[1]), f"{n:.0f}"],
            env=env,
            stdout=fo,
            stderr=fe,
            check=True,
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def read_khits(path: Path) -> dict[tuple[int, int], np.ndarray]:
    """Kernel hit times per (string, module)."""
    hits: dict[tuple[int, int], list[float]] = {}
    with open(path) as f:
        for line in f:
            if line.startswith("KHIT"):
                _, s, m, t, _ = line.split()
                hits.setdefault((int(s), int(m)), []).append(float(t))
    return {k: np.sort(np.asarray(v)) for k, v in hits.items()}


class SurfaceFlasher:
    """Isotropic flasher photons starting on the module surface at t = r/c (as PPC)."""

    def __init__(self, centre: tuple[float, float, float], n_photons: int) -> None:
        self.centre = np.asarray(centre, dtype=float)
        self.n_photons = int(n_photons)

    def photon_count(self, medium, detector, rng) -> int:
        return self.n_photons

    def generate(self, n, medium, detector, rng) -> dict[str, np.ndarray]:
        d = isotropic_directions(n, rng)
        wl = rng.uniform(*WAVELENGTHS_NM, size=n)
        pos = self.centre + DOM_RADIUS_M * d
        return {
            "x": pos[:, 0],
            "y": pos[:, 1],
            "z": pos[:, 2],
            "dx": d[:, 0],
            "dy": d[:, 1],
            "dz": d[:, 2],
            "t": np.full(n, DOM_RADIUS_M / SPEED_OF_LIGHT_M_PER_NS),
            "wl": wl,
            "w": np.ones(n),
        }

    def describe(self) -> dict:
        return {"type": "surface-flasher", "n_photons": self.n_photons}


def run_ariasim(tables: Path, config: str, n: int, seed: int) -> tuple[dict, float]:
    """ariasim on the same folder; returns hit times per module and the kernel CPU time."""
    off = config in ("homogeneous", "layered")
    medium = ppc_ice(
        tables,
        tilt=not off and config != "notilt",
        anisotropy=not off and config != "noaniso",
        birefringence=not off and config != "nobfr",
    )
    geo = geometry()
    pos = np.array([[x, y, DEPTH_ORIGIN_M - dep] for _, _, x, y, dep in geo])
    ids = np.array([s * 100 + k for s, k, *_ in geo])
    det = Detector(
        pos,
        module_ids=ids,
        radius_m=DOM_RADIUS_M,
        angular_acceptance="flat",
        wavelength_acceptance=False,
    )
    i_fl = [(s, k) for s, k, *_ in geo].index(FLASHER)
    src = SurfaceFlasher(tuple(pos[i_fl]), n)
    res = simulate(src, medium, det, seed=seed, n_threads=1)
    h = res.hits
    out = {}
    for mid, grp in h.groupby("module_id"):
        out[(int(mid) // 100, int(mid) % 100)] = np.sort(grp["time_ns"].to_numpy())
    return out, res.cpu_s


def quantile_err(t: np.ndarray, q: float, rng: np.random.Generator) -> tuple[float, float]:
    """Quantile and its standard error (bootstrap, 200 resamples)."""
    n = t.size
    if n < 5:
        return math.nan, math.nan
    boot = np.quantile(t[rng.integers(0, n, size=(200, n))], q, axis=1)
    return float(np.quantile(t, q)), float(boot.std(ddof=1))


def compare(ppc: dict, ari: dict, min_hits: int = 20) -> dict:
    """Per-level hit and time-quantile comparison."""
    keys = sorted(k for k in set(ppc) | set(ari) if k != FLASHER)
    rng = np.random.default_rng(12345)
    rows = []
    for k in keys:
        a = ari.get(k, np.zeros(0))
        p = ppc.get(k, np.zeros(0))
        row = {"level": f"{k[0]}-{k[1]}", "ppc": int(p.size), "ariasim": int(a.size)}
        for q in QUANTILES:
            if min(a.size, p.size) >= min_hits:
                tp, ep = quantile_err(p, q, rng)
                ta, ea = quantile_err(a, q, rng)
                row[f"dt{round(q * 100)}"] = tp - ta
                row[f"e{round(q * 100)}"] = math.hypot(ep, ea)
        rows.append(row)
    np_ = np.array([r["ppc"] for r in rows], float)
    na = np.array([r["ariasim"] for r in rows], float)
    m = (np_ + na) > 0
    chi2 = float(np.sum((np_[m] - na[m]) ** 2 / (np_[m] + na[m])))
    out = {
        "rows": rows,
        "hits_chi2": chi2,
        "hits_ndf": int(m.sum()),
        "ratio": float(np_.sum() / na.sum()),
        "ratio_err": float(np_.sum() / na.sum() * math.sqrt(1 / np_.sum() + 1 / na.sum())),
    }
    for q in QUANTILES:
        key = f"dt{round(q * 100)}"
        sel = [r for r in rows if key in r and r[f"e{round(q * 100)}"] > 0]
        d = np.array([r[key] for r in sel])
        e = np.array([r[f"e{round(q * 100)}"] for r in sel])
        w = 1 / e**2
        out[key] = float(np.sum(w * d) / np.sum(w))
        out[key + "_err"] = float(1 / math.sqrt(np.sum(w)))
        out[key + "_chi2"] = float(np.sum(d * d * w))
        out[key + "_ndf"] = len(sel)
        # the plain mean over levels (each level counts once)
        out[key + "_mean"] = float(d.mean())
        out[key + "_mean_err"] = float(math.sqrt(np.sum(e * e)) / len(sel))
    return out


def _print_pooled(config: str, ppc: dict, ari: dict, files: list[Path]) -> None:
    """Time quantiles of this run pooled with more runs of the same configuration."""
    pp = {k: [v] for k, v in ppc.items()}
    pa = {k: [v] for k, v in ari.items()}
    n_ppc = n_ari = 1
    for f in files:
        if f.suffix == ".txt":
            extra, target = read_khits(f), pp
            n_ppc += 1
        else:
            z = np.load(f)
            extra = {(int(k) // 100, int(k) % 100): z[k] for k in z.files if k.isdigit()}
            target = pa
            n_ari += 1
        for k, v in extra.items():
            target.setdefault(k, []).append(v)
    c = compare(
        {k: np.sort(np.concatenate(v)) for k, v in pp.items()},
        {k: np.sort(np.concatenate(v)) for k, v in pa.items()},
    )
    print(
        f"{config} pooled ({n_ppc} PPC runs, {n_ari} ariasim runs)  "
        + "  ".join(
            f"dt{q} {c[f'dt{q}_mean']:+.2f}+-{c[f'dt{q}_mean_err']:.2f} "
            f"(chi2 {c[f'dt{q}_chi2']:.0f}/{c[f'dt{q}_ndf']})"
            for q in (10, 50, 90)
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ppc", type=Path, help="PPC CPU executable with the KHIT printout")
    ap.add_argument("--build-ppc", nargs=2, type=Path, metavar=("SRC", "DEST"))
    ap.add_argument("--ice", type=Path, default=Path("/work/anchors/ppc/ice/spice_bfr-v2"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_ppc_ice"))
    ap.add_argument("--photons", type=float, default=8e6)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", action="store_true", help="reuse the outputs in --work")
    ap.add_argument("--levels", action="store_true", help="print the per-level table")
    ap.add_argument(
        "--pool",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="more runs of the first configuration (PPC KHIT outputs *.txt, e.g. from "
        "`ppc 1 9 2e7 SEED` with PPCTABLESDIR=WORK/tab_CONFIG/, and ariasim *.npz written "
        "by this script with other --seed): their hit times are pooled with this run's "
        "for the arrival-time quantiles (hit counts are not compared: unequal photons)",
    )
    args = ap.parse_args()
    if args.build_ppc:
        print("built", build_ppc(*args.build_ppc))
        return
    if args.ppc is None:
        raise SystemExit("need --ppc (a PPC CPU build with the KHIT printout; see --build-ppc)")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    all_hits: dict[str, tuple] = {}
    # PPC's start-up, to subtract from its CPU time
    tab = write_tables(args.ice, args.work, "layered")
    startup = run_ppc(args.ppc, tab, 1e4, args.work / "ppc_startup.txt")
    for config in args.configs.split(","):
        tab = write_tables(args.ice, args.work, config)
        out = args.work / f"ppc_{config}.txt"
        meta = args.work / f"ppc_{config}.json"
        n = int(args.photons)
        if args.reuse and out.exists() and meta.exists():
            info = json.loads(meta.read_text())
            ppc_cpu, n = info.get("cpu_s") or math.nan, int(info["photons"])
        else:
            ppc_cpu = run_ppc(args.ppc, tab, n, out)
            meta.write_text(json.dumps({"cpu_s": ppc_cpu, "photons": n}))
        ppc_hits = read_khits(out)
        ari_file = args.work / f"ariasim_{config}.npz"
        if args.reuse and ari_file.exists() and int(np.load(ari_file)["photons"]) == n:
            z = np.load(ari_file)
            ari_cpu, total_cpu = float(z["cpu_s"]), float(z["total_cpu_s"])
            ari_hits = {(int(k) // 100, int(k) % 100): z[k] for k in z.files if k.isdigit()}
        else:
            # compile/load the kernel first, so the timed run is the propagation only
            run_ariasim(tab, config, 2000, args.seed + 1)
            t0 = time.process_time()
            ari_hits, ari_cpu = run_ariasim(tab, config, n, args.seed)
            total_cpu = time.process_time() - t0
            np.savez(
                ari_file,
                photons=n,
                cpu_s=ari_cpu,
                total_cpu_s=total_cpu,
                **{str(s * 100 + m): v for (s, m), v in ari_hits.items()},
            )
        all_hits[config] = (n, ppc_hits, ari_hits)
        if args.pool and config == args.configs.split(",")[0]:
            _print_pooled(config, ppc_hits, ari_hits, args.pool)
        c = compare(ppc_hits, ari_hits)
        c.update(
            ppc_per_cpu_s=n / max(ppc_cpu - startup, 1e-9),
            ariasim_per_cpu_s=n / ari_cpu,
            ariasim_total_cpu_s=total_cpu,
        )
        c["photons"] = n
        results[config] = c
        print(
            f"{config:12s} N {n:.2g} hits chi2 {c['hits_chi2']:6.1f}/{c['hits_ndf']:<3d} "
            f"PPC/ariasim {c['ratio']:.3f}+-{c['ratio_err']:.3f}  "
            + "  ".join(
                f"dt{q} {c[f'dt{q}_mean']:+.2f}+-{c[f'dt{q}_mean_err']:.2f} "
                f"(chi2 {c[f'dt{q}_chi2']:.0f}/{c[f'dt{q}_ndf']})"
                for q in (10, 50, 90)
            )
            + f"  ph/CPU-s PPC {c['ppc_per_cpu_s']:.3g} ariasim {c['ariasim_per_cpu_s']:.3g} "
            f"(x{c['ariasim_per_cpu_s'] / c['ppc_per_cpu_s']:.2f})",
            flush=True,
        )
        if args.levels:
            for r in c["rows"]:
                print(
                    f"   {r['level']:6s} {r['ppc']:6d} {r['ariasim']:6d} "
                    + " ".join(
                        f"{r.get(f'dt{q}', math.nan):+6.2f}+-{r.get(f'e{q}', math.nan):4.2f}"
                        for q in (10, 50, 90)
                    )
                )
    # the gap the effects close: PPC in full ice against ariasim without the effects
    if (
        "full" in all_hits
        and "layered" in all_hits
        and all_hits["full"][0] == all_hits["layered"][0]
    ):
        g = compare(all_hits["full"][1], all_hits["layered"][2])
        results["gap_ppc_full_vs_ariasim_layered"] = g
        print(
            f"{'PPC full vs ariasim layered':28s} hits chi2 {g['hits_chi2']:6.1f}/"
            f"{g['hits_ndf']:<3d} PPC/ariasim {g['ratio']:.3f}+-{g['ratio_err']:.3f}  "
            + "  ".join(
                f"dt{q} {g[f'dt{q}_mean']:+.2f}+-{g[f'dt{q}_mean_err']:.2f} "
                f"(chi2 {g[f'dt{q}_chi2']:.0f}/{g[f'dt{q}_ndf']})"
                for q in (10, 50, 90)
            )
        )
    path = args.work / "results.json"  # merged with earlier runs' configurations
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=1))
    print(f"PPC start-up {startup:.2f} CPU-s (subtracted); results in {args.work / 'results.json'}")


if __name__ == "__main__":
    main()
