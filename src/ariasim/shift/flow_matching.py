"""Conditional flow matching with mini-batch optimal transport: move source events to the target.

A velocity field ``v(x, t | c)`` is learned whose flow carries the source distribution
(``t = 0``) to the target distribution (``t = 1``) directly, not through a noise distribution
(Lipman et al., "Flow matching for generative modeling", ICLR 2023; Tong et al., "Improving
and generalizing flow-based generative models with minibatch optimal transport", TMLR 2024,
the OT-CFM objective; Liu et al., "Flow straight and fast: learning to generate and transfer
data with rectified flow", ICLR 2023, for the two-distribution transfer). Training:

1. draw a mini-batch of ``batch_size`` source events and one of target events, each with
   probability proportional to its sample weight (a seeded generator), so weighted samples
   are honoured without weights in the loss;
2. pair them by the **exact optimal assignment** on the batch
   (:func:`scipy.optimize.linear_sum_assignment`) for the cost
   ``|z0 - z1|^2 + context_weight * |c0 - c1|^2`` (codec coordinates, standardised
   context). The large context weight makes a source event pair with a target event of
   (nearly) the same context, so the transport keeps the context: the learned map is the
   conditional transport of ``p_source(x | c)`` onto ``p_target(x | c)``; among events of
   similar context, pairs are the optimal-transport ones, which keeps the paths nearly
   straight and the morph nearly monotone (an event stays at its quantile). The assignment
   is one-to-one within the batch, so this assumes the two domains have similar context
   distributions; where they differ (another energy spectrum), some pairs must mix
   contexts and the learned map is biased towards the neighbours' shift: reweight the
   context first (e.g. :class:`~ariasim.shift.ClassifierReweighter` on the context
   columns, its weights as ``sample_weight``) or accept the bias;
3. regress ``v(x_t, t, c)`` with ``x_t = (1 - t) z0 + t z1 (+ sigma * noise)``,
   ``t ~ U(0, 1)``, on ``z1 - z0`` (mean squared error), where ``c`` is the mid-point of the
   pair's standardised contexts (symmetric, so the inverse sees the same field).

Morphing integrates ``dz/dt = v(z, t, c)`` from 0 to 1 (``inverse_transform``: from 1 to 0)
with a fixed-step classical Runge-Kutta scheme (RK4, ``n_steps`` steps).

Why a small implementation here rather than ``torchcfm`` and ``torchdiffeq``: no extra
dependency (the whole method is the assignment, one interpolation and an MSE); fixed steps
make the morph deterministic and its cost known in advance (adaptive solvers choose their
steps from the data of the batch, so a row's result would depend on its neighbours); and the
mini-batch sampler must honour sample weights and the context, which ``torchcfm``'s samplers
do not.

Measured (``benchmarks/bench_shift_flow_matching.py``, 20k events per side, a continuous
feature, a Poisson count and a feature with a 30 % spike at 0, defaults, one CPU thread on a
shared machine): fits take 10-85 s (28-82 epochs), morphing 20k events 2-7 s; the
classifier AUC after the morph is 0.495-0.501 for a scale, an offset, a smearing, a
monotone non-linear map, a correlated change and a context-dependent shift (0.53-0.59
before), 0.5005 for a closure; for the offset the morphed continuous feature is within 0.023
(rms, 2.3 % of its width) of each event's exact image, and 2 % of the (unshifted) counts
move by one.

Features are handled by :class:`ariasim.shift.features.FeatureCodec` (fitted on the pooled
sample): integer counts are dequantised, spikes spread into a band, heavy tails logged,
bounded columns logit-mapped; the flow lives in those coordinates and decoding puts counts,
spikes and bounds back. The dequantisation noise of a ``transform`` call comes from a
generator seeded by ``random_state``, so the same table gives byte-identical output. The
network is evaluated in fixed, padded chunks of :data:`CHUNK` rows, so for continuous
features a row's morph does not depend on the other rows of the call (for counts and spikes
it depends on the row's position, through the noise drawn for it).
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator
from torch import nn

from ariasim.errors import ConfigError, InputError, check_int
from ariasim.shift.base import MorpherMixin, split_domains
from ariasim.shift.features import ContextScaler, FeatureCodec
from ariasim.shift.persist import read_tensors, save_folder
from ariasim.utils import spawn_seeds

__all__ = ["CHUNK", "FlowMatchingMorpher", "VelocityNet"]

CHUNK = 2048  # rows per network evaluation when morphing (the last chunk is padded)
# fixed validation batches (same pairs, times and noise every epoch): enough to cover the
# held-out events about twice, at least 16 (the loss's spread over t is large), at most 64
_VAL_BATCHES = (16, 64)


@contextmanager
def _torch_settings(n_threads: int | None, device: torch.device) -> Iterator[None]:
    """Torch's thread count (and, on a GPU, its deterministic algorithms) for the duration,
    restored afterwards. On the CPU the operations used here (linear layers, SiLU, Adam) are
    deterministic already, and switching the flag on costs seconds of imports."""
    threads = torch.get_num_threads()
    gpu = device.type != "cpu"
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if gpu:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        if gpu:
            torch.use_deterministic_algorithms(previous, warn_only=warn_only)
        torch.set_num_threads(threads)


class VelocityNet(nn.Module):
    """MLP velocity ``v(z, t, c)``: inputs ``z``, time features and the context.

    The time enters as ``t`` and ``sin``/``cos`` of ``pi t`` and ``2 pi t`` (a small Fourier
    embedding, so the field can change shape along the path).

    Example:
        >>> import torch
        >>> net = VelocityNet(2, 1, (8,), generator=torch.Generator().manual_seed(0))
        >>> net(torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(3, 1)).shape
        torch.Size([3, 2])
    """

    N_TIME = 5

    def __init__(
        self,
        dim: int,
        n_context: int,
        hidden: Sequence[int],
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        widths = [dim + self.N_TIME + n_context, *[int(h) for h in hidden], dim]
        layers: list[nn.Module] = []
        for k, (a, b) in enumerate(itertools.pairwise(widths)):
            lin = nn.Linear(a, b)
            bound = 1.0 / math.sqrt(a)
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound, generator=generator)
                lin.bias.uniform_(-bound, bound, generator=generator)
            layers.append(lin)
            if k < len(widths) - 2:
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a = math.pi * t
        feats = torch.cat([t, torch.sin(a), torch.cos(a), torch.sin(2 * a), torch.cos(2 * a)], 1)
        return self.net(torch.cat([z, feats, c], dim=1))


def _rk4(
    net: VelocityNet, z: torch.Tensor, c: torch.Tensor, t0: float, t1: float, n_steps: int
) -> torch.Tensor:
    """Integrate ``dz/dt = net(z, t, c)`` from ``t0`` to ``t1`` with ``n_steps`` RK4 steps."""
    h = (t1 - t0) / n_steps
    ones = torch.ones(z.shape[0], 1, dtype=z.dtype, device=z.device)
    for k in range(n_steps):
        t = t0 + k * h
        k1 = net(z, ones * t, c)
        k2 = net(z + 0.5 * h * k1, ones * (t + 0.5 * h), c)
        k3 = net(z + 0.5 * h * k2, ones * (t + 0.5 * h), c)
        k4 = net(z + h * k3, ones * (t + h), c)
        z = z + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return z


class _Sampler:
    """Weighted mini-batches (with replacement, probability proportional to the weight)."""

    def __init__(self, w: np.ndarray):
        cdf = np.cumsum(w, dtype=np.float64)
        self.cdf = cdf / cdf[-1]

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        idx = np.searchsorted(self.cdf, rng.random(n), side="right")
        return np.minimum(idx, self.cdf.size - 1)


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column index matched to each row of ``a`` by the exact assignment (squared cost)."""
    _, col = linear_sum_assignment(cdist(a, b, "sqeuclidean"))
    return col


class FlowMatchingMorpher(MorpherMixin, BaseEstimator):
    """Morph source events to the target with OT conditional flow matching (module doc).

    Arguments:
        features: Feature columns to morph (``None``: every column that is not context).
        context: Context columns: kept unchanged, fed to the velocity network, and part of
            the pairing cost so that the transport keeps them (see ``context_weight``).
        transforms, bounds: Passed to :class:`~ariasim.shift.features.FeatureCodec`
            (``{"col": "none"|"log"|"logit"}``, ``{"col": (lo, hi)}``).
        hidden_features: Widths of the velocity MLP's hidden layers (SiLU).
        max_epochs: Most epochs; one epoch is ``ceil(n / batch_size)`` steps with ``n`` the
            larger training domain.
        patience: Stop after this many epochs without a lower validation loss.
        restore_best: Keep the weights of the epoch with the lowest validation loss
            (``False``: the averaged weights at the stop). Off by default: the field's few
            effective parameters (e.g. a mean shift) are estimated from the training events,
            and picking the epoch that best fits the smaller validation set adds that set's
            own fluctuation (at 400 events per side a mean shift is uncertain by 0.07 sd,
            twice the training set's), which was seen to pick under-trained early epochs.
        validation_fraction: Fraction of each domain held out for the validation loss.
        batch_size: Events per domain in a mini-batch, and size of the exact assignment
            (cost grows as ``batch_size**3``; 256 takes a few ms).
        learning_rate: Adam learning rate (multiplied by 0.3 after ``patience // 3`` epochs
            without a lower validation loss).
        sigma: Standard deviation of the Gaussian noise added to the interpolant (0: none).
        context_weight: Weight of the squared standardised context distance in the pairing
            cost (large: pairs share their context).
        context_bins: Pair within context cells (0: off): each context column is cut at
            ``context_bins`` quantiles of the pooled sample, and every mini-batch draws its
            source and its target events from one cell (chosen with probability equal to
            its share of the source's weight; cells lacking either domain are skipped), so
            the assignment compares events of nearly the same context and the pairing in
            the features is a real optimal transport inside the cell, instead of a
            near-random match among the few events of a batch that share a context
            (stratified mini-batch OT; the cells multiply: keep ``context_bins ** n_context``
            well below the events per domain over ``batch_size``).
        ema_decay: Per-step decay of the exponential moving average of the weights; the
            average is what is validated, kept and used to morph (it smooths the noise of
            the stochastic gradients; 0: the last weights).
        n_steps: RK4 steps of the morph (4 network evaluations each).
        device: Torch device (``"cpu"``, ``"cuda"``); results are byte-identical only on
            the same device and library versions.
        n_threads: Torch CPU threads during fit and morph (``None``: leave torch's setting).
        random_state: Integer seed, split with :func:`ariasim.utils.spawn_seeds` into the
            streams of training and of each morph direction (no global random state).
        progress: Optional ``progress(epoch, n_epochs, val_loss)`` called after each epoch.

    After ``fit``: ``codec_``, ``context_scaler_``, ``network_``, ``history_`` (per epoch:
    ``epoch``, ``train_loss``, ``val_loss``, ``lr``), ``n_epochs_`` (epochs run), ``best_epoch_``
    (lowest validation loss),
    ``train_seconds_``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from ariasim.shift import stack
        >>> rng = np.random.default_rng(0)
        >>> src = pd.DataFrame({"x": rng.normal(0.0, 1.0, 400)})
        >>> tgt = pd.DataFrame({"x": rng.normal(1.0, 1.0, 400)})
        >>> X, y, _ = stack(src, tgt)
        >>> fm = FlowMatchingMorpher(hidden_features=(32,), max_epochs=25, batch_size=128,
        ...                          learning_rate=0.01, n_steps=8).fit(X, y)
        >>> moved = fm.transform(src)
        >>> bool(abs(moved["x"].mean() - tgt["x"].mean()) < 0.2)
        True
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        context: Sequence[str] | None = None,
        *,
        transforms: Mapping[str, str] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        hidden_features: Sequence[int] = (128, 128, 128),
        max_epochs: int = 100,
        patience: int = 15,
        restore_best: bool = False,
        validation_fraction: float = 0.2,
        batch_size: int = 256,
        learning_rate: float = 2e-3,
        sigma: float = 0.0,
        context_weight: float = 100.0,
        context_bins: int = 0,
        ema_decay: float = 0.99,
        n_steps: int = 32,
        device: str = "cpu",
        n_threads: int | None = 1,
        random_state: int = 0,
        progress: Callable[[int, int, float], Any] | None = None,
    ):
        self.features = features
        self.context = context
        self.transforms = transforms
        self.bounds = bounds
        self.hidden_features = hidden_features
        self.max_epochs = max_epochs
        self.patience = patience
        self.restore_best = restore_best
        self.validation_fraction = validation_fraction
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.sigma = sigma
        self.context_weight = context_weight
        self.context_bins = context_bins
        self.ema_decay = ema_decay
        self.n_steps = n_steps
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.progress = progress

    # --- checks ------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("max_epochs", "patience", "n_steps"):
            check_int(name, getattr(self, name))
        check_int("random_state", self.random_state, 0)  # an int: saved, reused per call
        check_int("batch_size", self.batch_size, 2)
        if self.n_threads is not None:
            check_int("n_threads", self.n_threads)
        hidden = self.hidden_features
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or not hidden:
            raise ConfigError(
                f"must be a non-empty list of widths, got {hidden!r}", parameter="hidden_features"
            )
        for h in hidden:
            check_int("hidden_features", h)
        for name, lo, hi in (("validation_fraction", 0.0, 0.9), ("learning_rate", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo < v <= hi:
                raise ConfigError(f"must be in ({lo:g}, {hi:g}], got {v!r}", parameter=name)
        v = self.ema_decay
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
            raise ConfigError(f"must be in [0, 1), got {v!r}", parameter="ema_decay")
        cb = self.context_bins
        if isinstance(cb, bool) or not isinstance(cb, int | np.integer) or cb < 0:
            raise ConfigError(f"must be an integer >= 0, got {cb!r}", parameter="context_bins")
        for name in ("sigma", "context_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
                raise ConfigError(f"must be finite and >= 0, got {v!r}", parameter=name)
        if not isinstance(self.restore_best, bool | np.bool_):
            raise ConfigError(
                f"must be True or False, got {self.restore_best!r}", parameter="restore_best"
            )
        if self.progress is not None and not callable(self.progress):
            raise ConfigError(
                "must be callable(epoch, n_epochs, loss) or None", parameter="progress"
            )
        self._device()

    def _device(self) -> torch.device:
        try:
            dev = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"not a torch device ({exc})", parameter="device") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("CUDA was asked for but is not available", parameter="device")
        return dev

    # --- training ----------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> FlowMatchingMorpher:
        """Learn the velocity field on the pooled table (``y``: 0 source, 1 target)."""
        self._check_params()
        d = split_domains(X, y, sample_weight, self.features, self.context)
        seeds = spawn_seeds(self.random_state, 4)
        rng = np.random.default_rng(seeds[0])
        codec = FeatureCodec.fit(d.x, d.features, transforms=self.transforms, bounds=self.bounds)
        scaler = ContextScaler.fit(d.c)
        z = codec.encode(d.x, rng)
        c = scaler.apply(d.c)
        dev = self._device()
        start = time.perf_counter()
        with _torch_settings(self.n_threads, dev):
            net, history, best = self._train(z, c, d.y, d.w, rng, seeds[1], dev)
        self.train_seconds_ = time.perf_counter() - start
        self.codec_, self.context_scaler_ = codec, scaler
        self.network_ = net
        self.history_ = history
        self.n_epochs_ = len(history)
        self.best_epoch_ = best
        self.features_, self.context_ = d.features, d.context
        return self

    def _train(
        self,
        z: np.ndarray,
        c: np.ndarray,
        lab: np.ndarray,
        w: np.ndarray,
        rng: np.random.Generator,
        torch_seed: int,
        dev: torch.device,
    ) -> tuple[VelocityNet, list[dict[str, float]], int]:
        dim, n_ctx = z.shape[1], c.shape[1]
        root = math.sqrt(float(self.context_weight))
        keys = np.hstack([z, root * c])  # pairing coordinates: cost |dz|^2 + weight |dc|^2
        B = int(self.batch_size)
        train: list[tuple[np.ndarray, _Sampler]] = []
        val: list[tuple[np.ndarray, _Sampler]] = []
        for k, name in ((0, "source"), (1, "target")):
            idx = np.flatnonzero(lab == k)
            idx = idx[rng.permutation(idx.size)]
            n_val = round(float(self.validation_fraction) * idx.size)
            vi, ti = np.sort(idx[:n_val]), np.sort(idx[n_val:])
            if ti.size < 2 or vi.size < 1 or w[ti].sum() <= 0 or w[vi].sum() <= 0:
                raise InputError(
                    f"the {name} sample is too small (or too sparsely weighted) to hold out "
                    f"a validation fraction of {self.validation_fraction:g}"
                )
            train.append((ti, _Sampler(w[ti])))
            val.append((vi, _Sampler(w[vi])))
        cells = self._cells(c, lab, w, train, val)
        gen = torch.Generator().manual_seed(int(torch_seed))
        net = VelocityNet(dim, n_ctx, self.hidden_features, generator=gen).to(dev)

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=dev)

        def batch(parts: list[tuple[np.ndarray, _Sampler]], size: int) -> list[torch.Tensor]:
            (i0, s0), (i1, s1) = parts
            if cells is not None:  # one context cell per batch
                which = 0 if parts is train else 1
                choose, members = cells[which]
                cell = int(choose.draw(rng, 1)[0])
                (j0, t0), (j1, t1) = members[cell]
                a = j0[t0.draw(rng, size)]
                b = j1[t1.draw(rng, size)]
            else:
                a = i0[s0.draw(rng, size)]
                b = i1[s1.draw(rng, size)]
            b = b[_pair(keys[a], keys[b])]
            t = rng.random((size, 1))
            noise = rng.standard_normal((size, dim)) * float(self.sigma)
            zt = (1.0 - t) * z[a] + t * z[b] + noise
            cm = 0.5 * (c[a] + c[b])
            return [tensor(v) for v in (zt, t, cm, z[b] - z[a])]

        n_val = max(val[0][0].size, val[1][0].size)
        lo, hi = _VAL_BATCHES
        val_batches = [batch(val, B) for _ in range(min(max(lo, math.ceil(2 * n_val / B)), hi))]
        n_train = max(train[0][0].size, train[1][0].size)
        steps = max(1, math.ceil(n_train / B))
        epochs = int(self.max_epochs)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        # the rate drops (x0.3) after patience // 3 epochs without progress, so that the
        # weights settle before the stop instead of jittering at the full rate
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.3, patience=max(1, int(self.patience) // 3 - 1)
        )
        # exponential moving average of the weights: validated, kept and used to morph
        ema = copy.deepcopy(net).eval()
        ema_params = list(ema.parameters())
        decay = float(self.ema_decay)
        history: list[dict[str, float]] = []
        best_loss, best_epoch, best_state = math.inf, 0, None
        step = 0
        for epoch in range(1, epochs + 1):
            net.train()
            total = 0.0
            for _ in range(steps):
                zt, t, cm, u = batch(train, B)
                loss = torch.mean((net(zt, t, cm) - u) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                with torch.no_grad():
                    d = min(decay, (1.0 + step) / (10.0 + step))  # short warm-up
                    for pe, p in zip(ema_params, net.parameters(), strict=True):
                        pe.lerp_(p, 1.0 - d)
                total += float(loss.detach())
            with torch.no_grad():
                vl = float(
                    np.mean(
                        [float(torch.mean((ema(a, b, cc) - u) ** 2)) for a, b, cc, u in val_batches]
                    )
                )
            lr = float(opt.param_groups[0]["lr"])
            sched.step(vl)
            history.append({"epoch": epoch, "train_loss": total / steps, "val_loss": vl, "lr": lr})
            if self.progress is not None:
                self.progress(epoch, epochs, vl)
            if vl < best_loss:
                best_loss, best_epoch = vl, epoch
                if self.restore_best:
                    best_state = {k: v.detach().clone() for k, v in ema.state_dict().items()}
            elif epoch - best_epoch >= int(self.patience):
                break
        if best_state is not None:
            ema.load_state_dict(best_state)
        return ema, history, best_epoch

    def _cells(
        self,
        c: np.ndarray,
        lab: np.ndarray,
        w: np.ndarray,
        train: list[tuple[np.ndarray, _Sampler]],
        val: list[tuple[np.ndarray, _Sampler]],
    ) -> list[tuple[_Sampler, list[Any]]] | None:
        """Per split (train, validation): a sampler over the context cells holding both
        domains (by the source's weight) and, per cell, each domain's rows and sampler."""
        nb = int(self.context_bins)
        if nb == 0 or c.shape[1] == 0:
            return None
        cell = np.zeros(len(c), np.int64)
        for j in range(c.shape[1]):
            edges = np.unique(np.quantile(c[:, j], np.linspace(0, 1, nb + 1)[1:-1]))
            cell = cell * nb + np.searchsorted(edges, c[:, j], side="right")
        out = []
        for parts in (train, val):
            (i0, _), (i1, _) = parts
            ids, mass, members = [], [], []
            for k in np.unique(cell[i0]):
                j0, j1 = i0[cell[i0] == k], i1[cell[i1] == k]
                if j0.size == 0 or j1.size == 0 or w[j0].sum() <= 0 or w[j1].sum() <= 0:
                    continue
                ids.append(k)
                mass.append(w[j0].sum())
                members.append(((j0, _Sampler(w[j0])), (j1, _Sampler(w[j1]))))
            if not ids:
                raise InputError("no context cell holds events of both domains; lower context_bins")
            out.append((_Sampler(np.asarray(mass)), members))
        return out

    # --- morphing ----------------------------------------------------------------------
    def _morph(self, x: np.ndarray, c: np.ndarray, to_target: bool) -> np.ndarray:
        seeds = spawn_seeds(self.random_state, 4)
        rng = np.random.default_rng(seeds[2] if to_target else seeds[3])
        z = self.codec_.encode(x, rng)
        cs = self.context_scaler_.apply(c)
        dev = self._device()
        net = self.network_.to(dev)
        t0, t1 = (0.0, 1.0) if to_target else (1.0, 0.0)
        out = np.empty_like(z)
        n = z.shape[0]
        with _torch_settings(self.n_threads, dev), torch.no_grad():
            for s in range(0, n, CHUNK):
                m = min(CHUNK, n - s)
                zb = np.zeros((CHUNK, z.shape[1]), np.float32)
                cb = np.zeros((CHUNK, cs.shape[1]), np.float32)
                zb[:m], cb[:m] = z[s : s + m], cs[s : s + m]
                res = _rk4(
                    net,
                    torch.as_tensor(zb, device=dev),
                    torch.as_tensor(cb, device=dev),
                    t0,
                    t1,
                    int(self.n_steps),
                )
                out[s : s + m] = res[:m].cpu().numpy().astype(np.float64)
        if not np.all(np.isfinite(out)):
            raise InputError(
                "the morph produced non-finite values (rows far outside the training range?)"
            )
        return self.codec_.decode(out)

    # --- persistence -------------------------------------------------------------------
    def _saved_params(self) -> dict[str, Any]:
        params = self.get_params()
        params["progress"] = None  # a callable is not saved
        params["hidden_features"] = [int(h) for h in params["hidden_features"]]
        return params

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.json`` and ``weights.safetensors`` into the folder ``path``."""
        self._check_fitted()
        state = {
            "features": self.features_,
            "context": self.context_,
            "codec": self.codec_.to_dict(),
            "context_scaler": self.context_scaler_.to_dict(),
            "history": self.history_,
            "n_epochs": self.n_epochs_,
            "best_epoch": self.best_epoch_,
            # no training time here: the same data and seed give the same model file
        }
        tensors = {k: v.detach().cpu().numpy() for k, v in self.network_.state_dict().items()}
        return save_folder(
            path,
            type(self).__name__,
            self._saved_params(),
            state,
            tensors=tensors,
            overwrite=overwrite,
        )

    @classmethod
    def from_saved(cls, params: dict, state: dict, folder: Path) -> FlowMatchingMorpher:
        """Rebuild from the parts :func:`ariasim.shift.load` read (no pickle)."""
        self = cls(**params)
        self.features_ = [str(f) for f in state["features"]]
        self.context_ = [str(c) for c in state["context"]]
        self.codec_ = FeatureCodec.from_dict(state["codec"])
        self.context_scaler_ = ContextScaler.from_dict(state["context_scaler"])
        if self.codec_.names != self.features_:
            raise InputError("the codec's columns are not the features", field="state.codec")
        if len(self.context_scaler_.mean) != len(self.context_):
            raise InputError(
                "the context scaler does not match the context", field="state.context_scaler"
            )
        self.history_ = [dict(h) for h in state["history"]]
        self.n_epochs_ = int(state["n_epochs"])
        self.best_epoch_ = int(state["best_epoch"])
        self.train_seconds_ = float("nan")  # not saved (model files are reproducible)
        # the initial values are overwritten; a seeded generator keeps torch's global one out
        net = VelocityNet(
            len(self.features_),
            len(self.context_),
            self.hidden_features,
            generator=torch.Generator().manual_seed(0),
        )
        arrays = read_tensors(folder)
        expected = net.state_dict()
        if set(arrays) != set(expected) or any(
            tuple(arrays[k].shape) != tuple(v.shape) for k, v in expected.items()
        ):
            raise InputError(
                "the weights do not match the network the parameters describe",
                path=Path(folder) / "weights.safetensors",
            )
        net.load_state_dict({k: torch.as_tensor(np.array(arrays[k])) for k in expected})
        net.eval()
        self.network_ = net
        return self
