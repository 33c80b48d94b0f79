"""Morph events between two domains with ONE conditional normalising flow and a domain switch.

The method ("one flow to correct them all", used in CMS: C. Daumann, M. Donega, J. Erdmann,
M. Galli, J. L. Spaeh, D. Valsecchi, "One flow to correct them all: improving simulations in
high-energy physics with a single normalising flow and a switch", Comput. Softw. Big Sci. 8,
15 (2024), arXiv:2403.18582): a single conditional density ``p(x | c, d)`` is learned by
maximum likelihood on the pooled source and target samples, with the domain switch ``d``
(-1 source, +1 target) an extra context input next to the user's context ``c`` (standardised;
the flow also sees the gated copy ``d * c``, so a domain-dependent context effect is linear in
its inputs). The flow is a bijection ``z = f(x | c, d)`` onto a standard normal, so an event is
morphed by

    ``z = f(x | c, source)``,  ``x' = f^-1(z | c, target)``.

For every context ``c`` this carries the source's conditional distribution onto the target's
(exactly, if the flow were exact). Where the two conditionals agree the two bijections are the
same and the morph is the identity, so a distribution both domains share is left (close to)
unchanged and a small shift moves events a little. The pairing of events is the flow's, not
an optimal transport: with several features a morph can also reshuffle events along
directions where the densities agree (the closure test bounds how much).

The flow is zuko's neural spline flow (:class:`zuko.flows.NSF`: Durkan et al., "Neural Spline
Flows", NeurIPS 2019; masked autoregressive transforms, Papamakarios et al. 2017); with one
feature zuko makes it a stack of context-conditioned element-wise splines. It works in the
coordinates of :class:`~ariasim.shift.features.FeatureCodec` (fitted on the pooled features):
integer counts with at most ``count_levels`` integers in their range are mapped by their pooled
probabilities (each count's interval as wide as its probability), other counts dequantised
(and decoded by floor, never below the pooled minimum), spikes are spread into a band outside
the continuous part and interior atoms into a band of their own, both snapped back, heavy
tails are logged,
bounded variables logit-transformed, and everything is robustly standardised. zuko's splines
act on [-5, 5] and map it onto itself (identity outside), so each coordinate is further divided
by ``spread_ >= 1``, chosen so that the pooled 99.9 % quantile of ``|z|`` sits at 3: a tail or
a scale change then stays inside the splines' box instead of being frozen outside it.

Training: Adam (cosine-annealed learning rate) on the weighted negative log-likelihood; each
domain is rescaled to the same total weight (so a small target sample is not drowned by a large
source); the dequantisation noise is redrawn every epoch; an exponential moving average of the
weights (Polyak averaging) is what is validated and kept; a stratified validation fraction
drives early stopping (the best epoch's averaged weights are kept).

Reproducibility: every random number comes from generators seeded by
:func:`ariasim.utils.spawn_seeds` (network initialisation, validation split, batch order,
dequantisation noise); the global numpy/torch random states are neither used nor changed.
``transform`` computes in float64 in fixed chunks of :data:`CHUNK` rows whose
dequantisation noise is seeded by the chunk's index, so the output is a deterministic
function of the fitted model, the table and ``random_state``; splitting a table at multiples
of :data:`CHUNK` rows gives byte-identical results. On CPU the training result can depend on
torch's thread count (parallel reductions); reruns with the same thread count are
byte-identical.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ariasim.errors import ConfigError, InputError, check_int
from ariasim.shift.base import MorpherMixin, resolve_columns, split_domains
from ariasim.shift.features import CHUNK, ContextScaler, FeatureCodec, seeded_chunks
from ariasim.shift.persist import read_tensors, save_folder
from ariasim.utils import spawn_seeds

__all__ = ["CHUNK", "FlowMorpher"]

_Z_TAIL = 3.0  # where the pooled 99.9 % quantile of |z| is put in the flow's coordinates

# indices into spawn_seeds(random_state, _N_STREAMS)
_S_INIT, _S_SPLIT, _S_TRAIN, _S_FORWARD, _S_INVERSE, _N_STREAMS = 0, 1, 2, 3, 4, 5


def _torch() -> Any:
    import torch

    return torch


def _conditioning(switch: float | np.ndarray, cs: np.ndarray) -> np.ndarray:
    """The flow's context: the domain switch ``s`` (-1 source, +1 target), the standardised
    user context ``c`` and the gated copy ``s * c`` (a domain-dependent context effect is
    then linear in the inputs, which the networks learn much faster than the product)."""
    s = np.broadcast_to(np.asarray(switch, dtype=np.float64), (cs.shape[0],))[:, None]
    return np.hstack([s, cs, s * cs])


def _build_flow(
    n_features: int, n_context: int, transforms: int, hidden: Sequence[int], bins: int, seed: int
) -> Any:
    """A zuko NSF whose weights are drawn from a generator seeded with ``seed``.

    zuko's constructors initialise with torch's global generator; they run inside
    ``fork_rng`` (so the caller's global state is untouched) and every parameter is then
    redrawn from a private generator with PyTorch's default ``Linear`` law
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, fan_in being the weight's last dimension.

    The layers are found by their ``weight`` parameter, not by class: zuko's masked layers
    subclass ``torch.nn.Linear``, but since zuko 1.6 its plain ``zuko.nn.Linear`` (the
    hyper-network of a one-feature flow) does not, and an ``isinstance`` test left those
    weights to torch's global generator, so the same seed gave another flow in every
    process. A parameter this loop does not redraw raises, so a future layer kind cannot
    make the flow irreproducible unnoticed.
    """
    torch = _torch()
    import zuko

    with torch.random.fork_rng(devices=[]):
        flow = zuko.flows.NSF(
            features=n_features,
            context=n_context,
            transforms=transforms,
            bins=bins,
            hidden_features=tuple(int(h) for h in hidden),
        )
    gen = torch.Generator().manual_seed(int(seed))
    redrawn: set[int] = set()
    with torch.no_grad():
        for module in flow.modules():
            own = dict(module.named_parameters(recurse=False))
            weight = own.get("weight")
            if weight is None:
                continue
            bound = 1.0 / float(np.sqrt(weight.shape[-1]))
            for p in (weight, own.get("bias")):
                if p is not None:
                    p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) * 2 * bound - bound)
                    redrawn.add(id(p))
    missed = [name for name, p in flow.named_parameters() if id(p) not in redrawn]
    if missed:
        raise RuntimeError(
            f"zuko's NSF has parameters that are not seeded (zuko {zuko.__version__}): {missed}"
        )
    return flow


class FlowMorpher(MorpherMixin, BaseEstimator):
    """One conditional neural spline flow with a domain switch morphs source events to target.

    See the module docstring for the method (CMS "one flow to correct them all",
    arXiv:2403.18582) and how counts, spikes, tails and bounds are handled.

    Arguments:
        features: Feature columns to morph (``None``: every column that is not context).
        context: Context columns: the flow is conditional on them, they are never changed.
        transforms: Per-feature coordinate rule overrides for
            :class:`~ariasim.shift.features.FeatureCodec` (``"none"``, ``"log"``, ``"logit"``).
        bounds: ``{"col": (lo, hi)}`` for bounded features (logit coordinates; decoded values
            stay inside).
        flow_transforms: Number of autoregressive spline transforms of the flow.
        hidden_features: Hidden layer widths of each transform's masked network.
        bins: Spline bins per transform.
        quantile_knots: 0 (default) or the number of knots of a per-feature Gaussianising
            map (pooled empirical quantiles to normal scores, piecewise linear;
            :class:`~ariasim.shift.features.FeatureCodec`) applied before the flow: sharp
            structure of a marginal that both domains share (a narrow peak or edge, gaps
            between a count's values) is then carried by the exact map instead of the
            splines, which smooth it. A few hundred knots are enough; more than
            ``n / 20`` resolve the sample's noise.
        atom_tolerance: ``None`` (off) or the width, in robust standard deviations, of the
            clusters of values that count as an interior atom when they hold at least 0.5 %
            of the pooled rows (0: exactly repeated values only; default 0.005); each atom
            gets its own band in the coordinate
            (:class:`~ariasim.shift.features.FeatureCodec`).
        count_levels: 0 (off) or the most integers in the pooled range of an integer
            column that is mapped by its pooled probabilities (each count's interval as wide
            as its probability, so counts that never occur get only a sliver) instead of
            ``x + U(0, 1)`` (default 32). Both defaults were measured on the detector
            (seeds 0, 1) and the photon surrogate (seed 0): BENCHMARKS.md, "Interior atoms
            and probability-mapped counts".
        max_epochs: Most training epochs.
        patience: Stop after this many epochs without a better validation loss.
        validation_fraction: Fraction of each domain held out for early stopping (0: none,
            train ``max_epochs`` epochs).
        batch_size: Training mini-batch size.
        learning_rate: Adam's learning rate (cosine-annealed over ``max_epochs``).
        weight_decay: Adam's L2 weight decay.
        ema_decay: Per-step decay of an exponential moving average of the weights (Polyak
            averaging, with the warm-up ``min(ema_decay, (1 + t)/(10 + t))`` at step ``t``);
            the averaged flow is validated and kept, which removes most of the step-to-step
            noise of stochastic gradients (0: no averaging).
        device: ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), or ``"auto"`` (CUDA when available).
        random_state: Seed of every random number (split, initialisation, batches, noise).
        progress: Optional callable ``progress(epoch, max_epochs, loss)`` called after each
            epoch with the validation loss (the training loss when there is no validation);
            not saved.

    After ``fit``: ``codec_`` (the FeatureCodec), ``spread_`` (per-feature divisor of the
    codec coordinates), ``context_scaler_``, ``flow_`` (the zuko module, float32; transforms
    run on a float64 copy), ``history_`` (``{"train": [...], "val": [...]}``, weighted mean
    negative log-likelihood per epoch in the flow's coordinates), ``n_epochs_``,
    ``best_epoch_``, ``train_seconds_``, ``n_train_``, ``n_val_``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from ariasim.shift import stack
        >>> rng = np.random.default_rng(0)
        >>> src = pd.DataFrame({"x": rng.normal(0.0, 1.0, 400)})
        >>> tgt = pd.DataFrame({"x": rng.normal(1.0, 1.0, 400)})
        >>> X, y, _ = stack(src, tgt)
        >>> m = FlowMorpher(flow_transforms=1, hidden_features=(16,), max_epochs=20,
        ...                 batch_size=200, learning_rate=1e-2).fit(X, y)
        >>> moved = m.transform(src)
        >>> bool(abs(moved["x"].mean() - 1.0) < 0.3)
        True
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        context: Sequence[str] | None = None,
        *,
        transforms: Mapping[str, str] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        flow_transforms: int = 4,
        hidden_features: Sequence[int] = (64, 64),
        bins: int = 8,
        quantile_knots: int = 0,
        atom_tolerance: float | None = 0.005,
        count_levels: int = 32,
        max_epochs: int = 150,
        patience: int = 8,
        validation_fraction: float = 0.2,
        batch_size: int = 512,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.0,
        ema_decay: float = 0.99,
        device: str = "cpu",
        random_state: int = 0,
        progress: Callable[[int, int, float], Any] | None = None,
    ):
        self.features = features
        self.context = context
        self.transforms = transforms
        self.bounds = bounds
        self.flow_transforms = flow_transforms
        self.hidden_features = hidden_features
        self.bins = bins
        self.quantile_knots = quantile_knots
        self.atom_tolerance = atom_tolerance
        self.count_levels = count_levels
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.ema_decay = ema_decay
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # --- checks ------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_int("flow_transforms", self.flow_transforms)
        check_int("bins", self.bins, 2)
        check_int("max_epochs", self.max_epochs)
        check_int("patience", self.patience)
        check_int("batch_size", self.batch_size)
        hidden = self.hidden_features
        if isinstance(hidden, int | str) or not hidden:
            raise ConfigError(
                f"must be a non-empty sequence of layer widths, got {hidden!r}",
                parameter="hidden_features",
            )
        for h in hidden:
            check_int("hidden_features", h)
        vf = float(self.validation_fraction)
        if not 0 <= vf < 0.9:
            raise ConfigError(f"must be in [0, 0.9), got {vf!r}", parameter="validation_fraction")
        lr = float(self.learning_rate)
        if not (np.isfinite(lr) and lr > 0):
            raise ConfigError(f"must be positive, got {lr!r}", parameter="learning_rate")
        wd = float(self.weight_decay)
        if not (np.isfinite(wd) and wd >= 0):
            raise ConfigError(f"must be non-negative, got {wd!r}", parameter="weight_decay")
        ema = float(self.ema_decay)
        if not 0 <= ema < 1:
            raise ConfigError(f"must be in [0, 1), got {ema!r}", parameter="ema_decay")
        if self.progress is not None and not callable(self.progress):
            raise ConfigError("must be callable(epoch, max_epochs, loss)", parameter="progress")
        spawn_seeds(self.random_state, 1)  # raises on a bad seed

    def _torch_device(self) -> Any:
        torch = _torch()
        dev = str(self.device)
        if dev == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            d = torch.device(dev)
        except (RuntimeError, ValueError):
            raise ConfigError(
                f"{dev!r} is not a torch device (use 'cpu', 'cuda' or 'auto')", parameter="device"
            ) from None
        if d.type not in ("cpu", "cuda"):
            raise ConfigError(f"{dev!r}: only 'cpu' and 'cuda' are supported", parameter="device")
        if d.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("CUDA was asked for but is not available", parameter="device")
        return d

    # --- training ----------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> FlowMorpher:
        """Train the flow on the pooled table (``y``: 0 source, 1 target) by maximum likelihood."""
        torch = _torch()
        self._check_params()
        dev = self._torch_device()
        d = split_domains(X, y, sample_weight, self.features, self.context)
        seeds = spawn_seeds(self.random_state, _N_STREAMS)
        codec = FeatureCodec.fit(
            d.x,
            d.features,
            transforms=self.transforms,
            bounds=self.bounds,
            quantile_knots=self.quantile_knots,
            seed=seeds[_S_SPLIT],
            atom_tolerance=self.atom_tolerance,
            count_levels=self.count_levels,
        )
        scaler = ContextScaler.fit(d.c)
        # the splines act on [-5, 5] only and map it onto itself: shrink each coordinate so
        # that the pooled 99.9 % quantile of |z| sits at 3 (a standard normal's 99.7 %)
        z_pool = codec.encode(d.x, np.random.default_rng(seeds[_S_SPLIT]))
        spread = np.maximum(1.0, np.quantile(np.abs(z_pool), 0.999, axis=0) / _Z_TAIL)
        # balanced weights: each domain carries half of the total, mean weight 1
        w = d.w.astype(np.float64).copy()
        for k in (0, 1):
            w[d.y == k] *= 0.5 * len(w) / w[d.y == k].sum()
        cond = _conditioning(d.y.astype(np.float64) * 2.0 - 1.0, scaler.apply(d.c))

        # stratified validation split
        split_rng = np.random.default_rng(seeds[_S_SPLIT])
        val_mask = np.zeros(len(w), bool)
        if float(self.validation_fraction) > 0:
            for k in (0, 1):
                idx = np.nonzero(d.y == k)[0]
                n_val = round(float(self.validation_fraction) * idx.size)
                n_val = min(max(n_val, 1), idx.size - 1)
                val_mask[split_rng.permutation(idx)[:n_val]] = True
        tr, va = np.nonzero(~val_mask)[0], np.nonzero(val_mask)[0]

        flow = _build_flow(
            len(d.features),
            cond.shape[1],
            int(self.flow_transforms),
            self.hidden_features,
            int(self.bins),
            seeds[_S_INIT],
        ).to(dev)
        opt = torch.optim.Adam(
            flow.parameters(), lr=float(self.learning_rate), weight_decay=float(self.weight_decay)
        )
        n_max = int(self.max_epochs)
        ema = float(self.ema_decay)
        avg = copy.deepcopy(flow)  # the averaged weights (a copy when ema_decay = 0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_max)
        train_rng = np.random.default_rng(seeds[_S_TRAIN])
        gen = torch.Generator().manual_seed(int(train_rng.integers(2**62)))

        def tens(a: np.ndarray) -> Any:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=dev)

        c_tr, w_tr = tens(cond[tr]), tens(w[tr])
        if va.size:
            x_va = tens(codec.encode(d.x[va], train_rng) / spread)
            c_va, w_va = tens(cond[va]), tens(w[va])
        bs = min(int(self.batch_size), tr.size)
        history: dict[str, list[float]] = {"train": [], "val": []}
        best, best_epoch, best_state, stale = np.inf, 0, None, 0
        step = 0
        t0 = time.perf_counter()
        for epoch in range(1, n_max + 1):
            flow.train()
            x_tr = tens(codec.encode(d.x[tr], train_rng) / spread)  # fresh dequantisation
            order = torch.randperm(tr.size, generator=gen).to(dev)
            tot, wsum = 0.0, 0.0
            for start in range(0, tr.size - bs + 1, bs):  # drop the ragged last batch
                b = order[start : start + bs]
                wb = w_tr[b]
                loss = -(flow(c_tr[b]).log_prob(x_tr[b]) * wb).sum() / wb.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                # warm-up as in TensorFlow's ExponentialMovingAverage(num_updates): the
                # average does not lag behind a short training at its random start
                decay = min(ema, (1.0 + step) / (10.0 + step))
                with torch.no_grad():
                    for pa, p in zip(avg.parameters(), flow.parameters(), strict=True):
                        pa.lerp_(p, 1.0 - decay)
                tot += float(loss.detach()) * float(wb.sum())
                wsum += float(wb.sum())
            sched.step()
            history["train"].append(tot / max(wsum, 1e-300))
            if va.size:
                with torch.no_grad():
                    vl = 0.0
                    for s in range(0, va.size, CHUNK):
                        sl = slice(s, s + CHUNK)
                        vl += float(-(avg(c_va[sl]).log_prob(x_va[sl]) * w_va[sl]).sum())
                    val = vl / float(w_va.sum())
                if not np.isfinite(val):
                    raise InputError(
                        f"the flow's validation loss is {val} at epoch {epoch}; lower "
                        "learning_rate or check the features for extreme values"
                    )
                history["val"].append(val)
                if val < best:
                    best, best_epoch, stale = val, epoch, 0
                    best_state = copy.deepcopy(avg.state_dict())
                else:
                    stale += 1
            else:
                best_epoch = epoch
            if self.progress is not None:
                last = history["val"][-1] if va.size else history["train"][-1]
                self.progress(epoch, n_max, last)
            if va.size and stale >= int(self.patience):
                break
        flow = avg
        if best_state is not None:
            flow.load_state_dict(best_state)
        flow.eval()
        self.train_seconds_ = time.perf_counter() - t0
        self.flow_ = flow
        self.codec_ = codec
        self.spread_ = spread
        self.context_scaler_ = scaler
        self.history_ = history
        self.n_epochs_ = len(history["train"])
        self.best_epoch_ = int(best_epoch)
        self.n_train_, self.n_val_ = int(tr.size), int(va.size)
        self.features_, self.context_ = d.features, d.context
        self._infer = None
        return self

    # --- morphing ----------------------------------------------------------------------
    def _inference_flow(self) -> Any:
        """A float64 copy of the flow for transforms (cached)."""
        if getattr(self, "_infer", None) is None:
            self._infer = copy.deepcopy(self.flow_).double().eval()
        return self._infer

    def _morph(self, x: np.ndarray, c: np.ndarray, to_target: bool) -> np.ndarray:
        torch = _torch()
        flow = self._inference_flow()
        dev = next(flow.parameters()).device
        stream = _S_FORWARD if to_target else _S_INVERSE
        base_seed = spawn_seeds(self.random_state, _N_STREAMS)[stream]
        cs = self.context_scaler_.apply(c)
        d_from, d_to = (-1.0, 1.0) if to_target else (1.0, -1.0)
        out = np.empty_like(x, dtype=np.float64)
        with torch.no_grad():
            for sl, rng in seeded_chunks(x.shape[0], base_seed):
                z = self.codec_.encode(x[sl], rng) / self.spread_
                zt = torch.as_tensor(z, dtype=torch.float64, device=dev)
                c_from = torch.as_tensor(_conditioning(d_from, cs[sl]), device=dev)
                c_to = torch.as_tensor(_conditioning(d_to, cs[sl]), device=dev)
                moved = flow(c_to).transform.inv(flow(c_from).transform(zt))
                out[sl] = self.codec_.decode(moved.cpu().numpy() * self.spread_)
        return out

    def log_prob(self, X: pd.DataFrame, domain: int) -> np.ndarray:
        """Log-density of each row's features given ``domain`` (0 source, 1 target).

        In the flow's coordinates (codec coordinates over ``spread_``; the Jacobian of that
        map is left out), at one seeded draw of the dequantisation noise for counts and
        spikes: a comparison between rows or domains, not a density in the raw units.
        """
        torch = _torch()
        self._check_fitted()
        if domain not in (0, 1):
            raise ConfigError("must be 0 (source) or 1 (target)", parameter="domain")
        resolve_columns(X, self.features_, self.context_)
        x = X[self.features_].to_numpy(np.float64)
        c = X[self.context_].to_numpy(np.float64) if self.context_ else np.zeros((len(X), 0))
        if not (np.isfinite(x).all() and np.isfinite(c).all()):
            raise InputError("missing or non-finite values in the feature or context columns")
        flow = self._inference_flow()
        dev = next(flow.parameters()).device
        rng = np.random.default_rng(spawn_seeds(self.random_state, _N_STREAMS)[_S_FORWARD])
        z = self.codec_.encode(x, rng) / self.spread_
        z = torch.as_tensor(z, dtype=torch.float64, device=dev)
        cond = _conditioning(2.0 * domain - 1.0, self.context_scaler_.apply(c))
        with torch.no_grad():
            return flow(torch.as_tensor(cond, device=dev)).log_prob(z).cpu().numpy()

    # --- persistence -------------------------------------------------------------------
    def _architecture(self) -> dict[str, Any]:
        return {
            "library": "zuko",
            "flow": "NSF",
            "features": len(self.features_),
            "context": 1 + 2 * len(self.context_),
            "conditioning": "[switch, context, switch * context]",
            "transforms": int(self.flow_transforms),
            "hidden_features": [int(h) for h in self.hidden_features],
            "bins": int(self.bins),
            "domain_switch": {"source": -1.0, "target": 1.0},
        }

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.json`` and ``weights.safetensors`` into the folder ``path``."""
        self._check_fitted()
        params = self.get_params()
        params["progress"] = None
        params["device"] = str(self.device)
        state = {
            "features": self.features_,
            "context": self.context_,
            "codec": self.codec_.to_dict(),
            "spread": self.spread_.tolist(),
            "context_scaler": self.context_scaler_.to_dict(),
            "architecture": self._architecture(),
            "history": self.history_,
            "n_epochs": self.n_epochs_,
            "best_epoch": self.best_epoch_,
            # no training time here: the same data and seed give the same model file
            "n_train": self.n_train_,
            "n_val": self.n_val_,
        }
        tensors = {k: v.detach().cpu().numpy().copy() for k, v in self.flow_.state_dict().items()}
        return save_folder(
            path, type(self).__name__, params, state, tensors=tensors, overwrite=overwrite
        )

    @classmethod
    def from_saved(cls, params: dict, state: dict, folder: Path) -> FlowMorpher:
        """Rebuild from the parts :func:`ariasim.shift.load` read (no pickle).

        The model is loaded on the CPU unless its saved ``device`` is available.
        """
        torch = _torch()
        params = dict(params)
        if params.get("device", "cpu") != "cpu" and not torch.cuda.is_available():
            params["device"] = "cpu"
        if isinstance(params.get("hidden_features"), list):
            params["hidden_features"] = tuple(params["hidden_features"])
        if isinstance(params.get("bounds"), dict):
            params["bounds"] = {k: tuple(v) for k, v in params["bounds"].items()}
        self = cls(**params)
        self._check_params()
        self.features_ = [str(f) for f in state["features"]]
        self.context_ = [str(c) for c in state["context"]]
        self.codec_ = FeatureCodec.from_dict(state["codec"])
        self.spread_ = np.asarray(state["spread"], dtype=np.float64).reshape(-1)
        if self.spread_.shape != (len(self.features_),) or not np.all(self.spread_ >= 1):
            raise InputError("must hold one factor >= 1 per feature", field="state.spread")
        if self.codec_.names != self.features_:
            raise InputError("the codec's columns are not the features", field="state.codec")
        self.context_scaler_ = ContextScaler.from_dict(state["context_scaler"])
        if len(self.context_scaler_.mean) != len(self.context_):
            raise InputError(
                "the context scaler does not match the context", field="state.context_scaler"
            )
        arch = state["architecture"]
        if arch.get("library") != "zuko" or arch.get("flow") != "NSF":
            raise InputError("only zuko NSF flows are supported", field="state.architecture")
        hist = state["history"]
        self.history_ = {k: [float(v) for v in hist[k]] for k in ("train", "val")}
        self.n_epochs_ = int(state["n_epochs"])
        self.best_epoch_ = int(state["best_epoch"])
        self.train_seconds_ = float("nan")  # not saved (model files are reproducible)
        self.n_train_, self.n_val_ = int(state["n_train"]), int(state["n_val"])
        flow = _build_flow(
            len(self.features_),
            1 + 2 * len(self.context_),
            int(arch["transforms"]),
            [int(h) for h in arch["hidden_features"]],
            int(arch["bins"]),
            0,
        )
        arrays = read_tensors(folder)
        sd = flow.state_dict()
        if set(arrays) != set(sd):
            raise InputError(
                "the saved tensors do not match the flow's architecture",
                path=Path(folder) / "weights.safetensors",
            )
        loaded = {}
        for k, ref in sd.items():
            a = arrays[k]
            if tuple(a.shape) != tuple(ref.shape):
                raise InputError(
                    f"tensor {k!r} has shape {tuple(a.shape)}, expected {tuple(ref.shape)}",
                    path=Path(folder) / "weights.safetensors",
                )
            loaded[k] = torch.as_tensor(a).to(ref.dtype)
        flow.load_state_dict(loaded)
        self.flow_ = flow.to(self._torch_device()).eval()
        self._infer = None
        return self
