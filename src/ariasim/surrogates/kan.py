"""Kolmogorov-Arnold networks as scikit-learn estimators, with symbolic extraction.

:class:`KANRegressor` (losses: mean squared error, heteroscedastic Gaussian and log-normal
likelihoods) and :class:`KANClassifier` (binary cross-entropy) train the shared-basis KAN
of :mod:`ariasim.surrogates.kan_layers` in torch:

1. inputs (and for regression the target) are standardised; the splines start on
   ``grid_range`` and their grids are moved to the data quantiles at the epochs listed in
   ``grid_updates`` (and refined to finer grids at ``grid_refine``), each time
   re-projecting the splines by least squares so that the function is kept;
2. the loss is the (weighted) data term plus ``lamb`` times the KAN sparsity penalty
   (L1 of the edges' mean absolute activations plus ``lamb_entropy`` times their
   entropy), minimised by full-batch Levenberg-Marquardt on the generalised Gauss-Newton
   matrix (the default for networks of up to ``LM_MAX_PARAMS`` parameters: an analytic
   Jacobian, a Cholesky solve of the damped normal equations, Nielsen's damping update),
   by Adam on mini-batches, or by full-batch L-BFGS; early stopping on a validation split
   with the best state kept (the engine is :mod:`ariasim.surrogates.training`);
3. edges whose activation varies by less than ``prune_threshold`` times the largest edge
   of their layer are pruned (their mean folded into the node's bias), then hidden nodes
   left without inputs or outputs; the pruned network is fine-tuned without the penalty.

``symbolic()`` snaps every surviving edge to a library function and composes the network
into :class:`~ariasim.surrogates.formula.Formula` objects (see
:mod:`ariasim.surrogates.kan_symbolic`).

Unlike pykan, nothing is written to disk, and training is deterministic for a given
``random_state`` (a local torch Generator; deterministic algorithms are switched on for
the duration of ``fit``).

References:
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024).
    Blealtan, "efficient-kan" (GitHub): shared B-spline basis, one matmul per layer.
    de Boor, "A Practical Guide to Splines", Springer (1978).
    Levenberg, Q. Appl. Math. 2 (1944) 164; Marquardt, J. SIAM 11 (1963) 431;
    Madsen, Nielsen and Tingleff, "Methods for non-linear least squares problems", DTU
    (2004): Levenberg-Marquardt with Nielsen's damping update.
    Schraudolph, Neural Computation 14 (2002) 1723: the generalised Gauss-Newton matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula, single_threaded_blas
from ariasim.surrogates.kan_layers import KANNetwork
from ariasim.surrogates.parse import FormulaSyntaxError, check_name
from ariasim.surrogates.training import (
    LOG_SIGMA_CLAMP,
    TrainSettings,
    deterministic,
    resolve_optimizer,
    train,
)
from ariasim.utils import as_generator

__all__ = ["BaseKAN", "KANClassifier", "KANRegressor"]

_LOSSES = ("mse", "gaussian", "lognormal")
_OPTIMIZERS = ("auto", "lm", "lbfgs", "adam")
_MAX_STORED_ROWS = 20_000


class BaseKAN(BaseEstimator):
    """Shared machinery of :class:`KANRegressor` and :class:`KANClassifier` (not used
    directly: it has no loss of its own).

    Example:
        >>> issubclass(KANRegressor, BaseKAN) and issubclass(KANClassifier, BaseKAN)
        True
    """

    _n_outputs: int = 1

    # ------------------------------------------------------------------ parameters
    def _loss_name(self) -> str:
        raise NotImplementedError

    def _check_params(self) -> None:
        hidden = tuple(self.hidden)
        if any(int(h) != h or h < 1 for h in hidden):
            raise ConfigError(
                f"widths must be positive integers, got {self.hidden!r}", parameter="hidden"
            )
        if int(self.grid_size) != self.grid_size or self.grid_size < 1:
            raise ConfigError("must be a positive integer", parameter="grid_size")
        if int(self.spline_order) != self.spline_order or not 0 <= self.spline_order <= 5:
            raise ConfigError("must be an integer in [0, 5]", parameter="spline_order")
        lo, hi = self.grid_range
        if not float(lo) < float(hi):
            raise ConfigError("must be (low, high) with low < high", parameter="grid_range")
        for name in ("lamb", "lamb_entropy", "prune_threshold"):
            if not getattr(self, name) >= 0:
                raise ConfigError("must be >= 0", parameter=name)
        if int(self.max_epochs) != self.max_epochs or self.max_epochs < 1:
            raise ConfigError("must be a positive integer", parameter="max_epochs")
        if not self.lr > 0:
            raise ConfigError("must be > 0", parameter="lr")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ConfigError("must be a positive integer", parameter="batch_size")
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError(f"must be one of {_OPTIMIZERS}", parameter="optimizer")
        if not 0.0 <= self.validation_fraction < 0.9:
            raise ConfigError("must be in [0, 0.9)", parameter="validation_fraction")
        if self.n_threads is not None and (
            int(self.n_threads) != self.n_threads or self.n_threads < 1
        ):
            raise ConfigError("must be None or a positive integer", parameter="n_threads")
        if int(self.patience) != self.patience or self.patience < 1:
            raise ConfigError("must be a positive integer", parameter="patience")
        for e, g in self.grid_refine:
            if int(g) != g or g < 1 or int(e) != e or e < 0:
                raise ConfigError(
                    "must be (epoch, grid_size) pairs of non-negative integers",
                    parameter="grid_refine",
                )
        if any(int(e) != e or e < 0 for e in self.grid_updates):
            raise ConfigError("must be epochs (non-negative integers)", parameter="grid_updates")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(str(exc), parameter="device") from exc

    def _check_X(self, X: Any, *, fitting: bool) -> np.ndarray:
        """X as a finite float64 2-d array (scikit-learn's ``validate_data``: it also sets
        ``n_features_in_`` and, for DataFrames with string columns, ``feature_names_in_``
        when fitting, and checks them when predicting)."""
        try:
            return validate_data(self, X, reset=fitting, dtype=np.float64)
        except ValueError as exc:
            raise InputError(str(exc), column="X") from exc

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        """y as a 1-d array of ``n`` rows (a column vector is raveled with a warning)."""
        if y is None:
            raise InputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None",
                column="y",
            )
        try:
            yy = column_or_1d(y, warn=True)
        except ValueError as exc:
            raise InputError(str(exc), column="y") from exc
        if yy.shape[0] != n:
            raise InputError(f"y has {yy.shape[0]} rows, X has {n}", column="y")
        return yy

    def _check_weights(self, sample_weight: Any, n: int) -> np.ndarray:
        if sample_weight is None:
            return np.ones(n)
        w = np.asarray(sample_weight, dtype=float).reshape(-1)
        if w.shape[0] != n:
            raise InputError(
                f"sample_weight has {w.shape[0]} entries for {n} rows", column="sample_weight"
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise InputError(
                "sample_weight must be finite, non-negative and not all zero",
                column="sample_weight",
            )
        return w

    def _names(self, d: int) -> list[str]:
        if self.variable_names is not None:
            names = [str(n) for n in self.variable_names]
        elif hasattr(self, "feature_names_in_"):
            names = list(self.feature_names_in_)
        else:
            names = [f"x{j}" for j in range(d)]
        if len(names) != d:
            raise ConfigError(f"{len(names)} names for {d} inputs", parameter="variable_names")
        for n in names:
            try:
                check_name(n)
            except (FormulaSyntaxError, ConfigError) as exc:
                raise ConfigError(
                    f"{n!r} is not a valid variable name: {exc}", parameter="variable_names"
                ) from exc
        if self.variable_units is not None and len(self.variable_units) != d:
            raise ConfigError(
                f"{len(self.variable_units)} units for {d} inputs", parameter="variable_units"
            )
        return names

    # ------------------------------------------------------------------ training
    def _fit_network(self, Xs: np.ndarray, ys: np.ndarray, w: np.ndarray) -> None:
        """Train ``self.network_`` on standardised inputs ``Xs`` and targets ``ys``."""
        self._check_params()
        self._formulas = None  # the symbolic form of a previous fit
        rng = as_generator(self.random_state)
        n, d = Xs.shape
        device = torch.device(self.device)
        seed = int(rng.integers(0, 2**62))
        gen = torch.Generator().manual_seed(seed)
        perm = rng.permutation(n)
        n_val = round(self.validation_fraction * n)
        if n_val >= 1 and n - n_val >= 2:
            val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        else:
            val_idx = tr_idx = np.arange(n)

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)

        Xt, yt, wt = tensor(Xs[tr_idx]), tensor(ys[tr_idx]), tensor(w[tr_idx])
        Xv, yv, wv = tensor(Xs[val_idx]), tensor(ys[val_idx]), tensor(w[val_idx])
        wt = wt / wt.mean()
        wv = wv / wv.mean()
        widths = [d, *[int(h) for h in self.hidden], self._n_outputs]
        with deterministic(self.n_threads):
            net = KANNetwork(
                widths,
                grid_size=int(self.grid_size),
                spline_order=int(self.spline_order),
                grid_range=tuple(float(g) for g in self.grid_range),
                generator=gen,
            ).to(device)
            history: list[dict[str, Any]] = []
            net = train(
                net,
                Xt,
                yt,
                wt,
                Xv,
                yv,
                wv,
                gen,
                history,
                settings=self._settings(net),
                epochs=int(self.max_epochs),
                lamb=float(self.lamb),
                phase="train",
                grid_updates=set(int(e) for e in self.grid_updates),
                grid_refine={int(e): int(g) for e, g in self.grid_refine},
            )
            if self.prune_threshold > 0:
                n_before = net.n_active_edges()
                self._prune(net, Xt[:8192], float(self.prune_threshold))
                if net.n_active_edges() < n_before:
                    epochs = max(10, int(self.max_epochs) // 4)
                    net = train(
                        net,
                        Xt,
                        yt,
                        wt,
                        Xv,
                        yv,
                        wv,
                        gen,
                        history,
                        settings=self._settings(net),
                        epochs=epochs,
                        lamb=0.0,
                        phase="finetune",
                        grid_updates=set(),
                        grid_refine={},
                        start_epoch=len(history),
                    )
        net.eval()
        self.network_ = net
        self.history_ = pd.DataFrame(
            history, columns=["epoch", "train_loss", "val_loss", "n_active_edges", "phase"]
        )
        self.n_active_edges_ = net.n_active_edges()
        # observed range of every layer's inputs (symbolic extraction, plots)
        with torch.no_grad():
            inputs = net.layer_inputs(tensor(Xs[:_MAX_STORED_ROWS]))
        self._layer_inputs_ = [h.cpu().double().numpy() for h in inputs]

    def _resolve_optimizer(self, net: KANNetwork) -> str:
        """The optimiser actually used (:func:`~ariasim.surrogates.training.resolve_optimizer`
        of ``optimizer``, the network's size and ``lamb``)."""
        return resolve_optimizer(
            str(self.optimizer), sum(p.numel() for p in net.parameters()), float(self.lamb)
        )

    def _settings(self, net: KANNetwork) -> TrainSettings:
        return TrainSettings(
            loss=self._loss_name(),
            optimizer=self._resolve_optimizer(net),
            lr=self.lr,
            batch_size=int(self.batch_size),
            patience=int(self.patience),
            lamb_entropy=float(self.lamb_entropy),
            verbose=bool(self.verbose),
            n_outputs=self._n_outputs,
        )

    @torch.no_grad()
    def _prune(self, net: KANNetwork, X: torch.Tensor, threshold: float) -> None:
        """Mask weak edges, then hidden nodes without inputs or outputs; fold the masked
        edges' mean values into the biases of their nodes."""
        layers = list(net.layers)
        for li, layer in enumerate(layers):
            h = net.layer_inputs(X)[li]
            phi = layer.edge_values(h)  # (n, out, in)
            spread = phi.std(0) * layer.mask
            top = spread.max()
            if top <= 0:
                continue
            weak = (spread < threshold * top) & (layer.mask > 0)
            layer.bias += (phi.mean(0) * weak).sum(-1)
            layer.mask[weak] = 0.0
        # hidden nodes: dead when all incoming or all outgoing edges are masked
        changed = True
        while changed:
            changed = False
            for li in range(len(layers) - 1):
                cur, nxt = layers[li], layers[li + 1]
                for j in range(cur.out_features):
                    has_in = bool(cur.mask[j].sum() > 0)
                    has_out = bool(nxt.mask[:, j].sum() > 0)
                    if has_in == has_out:
                        continue
                    if has_in:  # no outputs: its inputs are useless
                        h = net.layer_inputs(X)[li]
                        phi = cur.edge_values(h)
                        cur.bias[j] += (phi.mean(0)[j] * cur.mask[j]).sum()
                        cur.mask[j] = 0.0
                    else:  # constant node: fold its outgoing edges into the next biases
                        h = net.layer_inputs(X)[li + 1]
                        phi = nxt.edge_values(h)
                        nxt.bias += phi.mean(0)[:, j] * nxt.mask[:, j]
                        nxt.mask[:, j] = 0.0
                    changed = True

    def _raw(self, X: Any) -> np.ndarray:
        """Network outputs (standardised scale), float64 ``(n, n_outputs)``."""
        check_is_fitted(self, "network_")
        arr = self._check_X(X, fitting=False)
        Xs = (arr - self.x_mean_) / self.x_scale_
        net = self.network_
        dev = next(net.parameters()).device
        out = []
        with torch.no_grad(), deterministic(self.n_threads):
            for start in range(0, Xs.shape[0], 65536):
                xb = torch.as_tensor(Xs[start : start + 65536], dtype=torch.float32, device=dev)
                out.append(net(xb).double().cpu().numpy())
        return np.concatenate(out, axis=0)

    def _standardize_X(self, arr: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.standardize:
            self.x_mean_ = np.average(arr, axis=0, weights=w)
            scale = np.sqrt(np.average((arr - self.x_mean_) ** 2, axis=0, weights=w))
            self.x_scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.x_mean_ = np.zeros(arr.shape[1])
            self.x_scale_ = np.ones(arr.shape[1])
        return (arr - self.x_mean_) / self.x_scale_

    def _store(self, arr: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        """Keep (a deterministic subsample of) the training data for ``symbolic()``."""
        n = arr.shape[0]
        idx = np.arange(n)
        if n > _MAX_STORED_ROWS:
            idx = np.sort(as_generator(0).choice(n, _MAX_STORED_ROWS, replace=False))
        self._fit_data_ = (arr[idx].copy(), y[idx].copy(), w[idx].copy())

    # ------------------------------------------------------------------ interpretation
    _main_formula: str = "mean"

    @property
    def formulas_(self) -> dict[str, Formula]:
        """The symbolic form of the fitted network, as a dict of :class:`Formula`.

        The default extraction: on first access it runs :meth:`symbolic` with its default
        options (seconds for small networks) and caches the result until the next
        ``fit``; an explicit :meth:`symbolic` call with other options replaces the cache.
        """
        check_is_fitted(self, "network_")
        cached = self.__dict__.get("_formulas")
        if cached is None:
            cached = self.symbolic()
        return dict(cached)

    @property
    def formula_(self) -> Formula:
        """The main formula of :attr:`formulas_` (``"mean"`` for the regressor,
        ``"probability"`` for the classifier)."""
        return self.formulas_[self._main_formula]

    def _extract(
        self,
        library: Sequence[str] | None,
        r2_threshold: float,
        refit: bool,
        data: tuple[Any, Any, Any] | None,
    ) -> dict[str, Formula]:
        from ariasim.surrogates.kan_symbolic import extract

        check_is_fitted(self, "network_")
        # torch (edge samples) and BLAS (constant re-fits) on fixed thread counts: the
        # same network gives the same formulas whatever the caller's thread settings
        with (
            deterministic(self.n_threads if self.n_threads is not None else 1),
            single_threaded_blas(),
        ):
            formulas = extract(
                self, library=library, r2_threshold=r2_threshold, refit=refit, data=data
            )
        self._formulas = dict(formulas)
        return formulas

    def plot_edges(self, path: Any = None) -> Any:
        """A grid of small plots of every active edge's learned function, with the
        symbolic fit overlaid after :meth:`symbolic`.

        Arguments:
            path: If given, the figure is also saved there.

        Returns:
            The matplotlib Figure.
        """
        from ariasim.surrogates.kan_plot import plot_edges

        check_is_fitted(self, "network_")
        return plot_edges(self, path)


_COMMON_DOC = """
        hidden: Widths of the hidden layers (``()``: one layer, an additive model).
        grid_size: Number of B-spline grid intervals per edge.
        spline_order: B-spline order (3: cubic).
        grid_range: Initial grid interval (in standardised units); grids then follow the
            data quantiles from the first grid update.
        lamb: Weight of the sparsity penalty (0: none).
        lamb_entropy: Weight of the entropy term relative to the L1 term.
        max_epochs: Maximum number of epochs of the main training phase.
        lr: Learning rate (Adam; for L-BFGS its step scale, 1 is usual; unused by LM,
            whose step length comes from its damping).
        batch_size: Mini-batch size for Adam.
        grid_updates: Epochs at which grids are moved to the data quantiles (at epoch 0
            only the first layer's: hidden activations of an untrained network carry no
            information, and fitting grids to them hurts training).
        grid_refine: ``(epoch, grid_size)`` pairs: refine to a finer grid at that epoch.
        prune_threshold: Edges whose activation spread is below this fraction of the
            largest edge of their layer are pruned after training (0: no pruning).
        standardize: Standardise inputs (and regression targets) before training.
        random_state: Seed or numpy Generator: initialisation, split, batches.
        device: Torch device ("cpu", "cuda", ...).
        variable_names: Input names for formulas (default: DataFrame columns, else x0...).
        variable_units: Input units for formulas.
        target_name: Output name for formulas.
        verbose: Print the loss of every epoch.
        optimizer: ``"auto"`` (default): ``"lm"`` for networks of up to 1000 parameters
            trained without the sparsity penalty (``lamb=0``), else ``"adam"`` (also for
            the fine-tuning after pruning). ``"lm"``: full-batch Levenberg-Marquardt on the
            generalised
            Gauss-Newton matrix ``J^T Lambda J`` (``Lambda``: the Fisher information of
            the loss in the network outputs), one epoch = one LM iteration (one Jacobian,
            up to 12 damped trial steps); converges in tens of epochs where L-BFGS needs
            hundreds of iterations. The sparsity penalty enters its gradient, not its
            curvature, and with ``lamb > 0`` the best state is selected on the
            penalised validation objective. Memory: the Jacobian is built in row chunks.
            ``"adam"``: mini-batches of ``batch_size``, one epoch = one pass.
            ``"lbfgs"``: full batch, one epoch = one L-BFGS step of up to 20 iterations.
        validation_fraction: Fraction of rows held out for early stopping (0: none; the
            training loss is then used).
        patience: Epochs without validation improvement before stopping (not before the
            last scheduled grid update).
        n_threads: Torch CPU threads while fitting and predicting (None: torch's setting).
            Small KANs run fastest on one thread; intra-op parallelism only adds
            synchronisation overhead (and suffers badly on a loaded machine).
"""


class KANRegressor(RegressorMixin, BaseKAN):
    __doc__ = (
        """Kolmogorov-Arnold network regressor with homo- or heteroscedastic losses.

    ``loss="mse"``: least squares; :meth:`predict` is the mean. ``loss="gaussian"``: the
    network has two outputs, mean ``mu(x)`` and ``log sigma(x)``, trained by the Gaussian
    negative log-likelihood; :meth:`predict` is ``mu`` and :meth:`predict_sigma` the
    absolute ``sigma``. ``loss="lognormal"``: for ``y > 0``, the outputs are ``mu(x)``
    and ``log sigma(x)`` of ``log y``; :meth:`predict` is the mean
    ``E[y] = exp(mu + sigma^2 / 2)``, :meth:`predict_median` is ``exp(mu)`` and
    :meth:`predict_sigma` is sigma of ``log y``.

    References:
        Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024).
        Nix and Weigend, "Estimating the mean and variance of the target probability
        distribution", ICNN 1994 (heteroscedastic likelihood training).

    Arguments:
        loss: ``"mse"``, ``"gaussian"`` or ``"lognormal"``."""
        + _COMMON_DOC
        + """
        target_unit: Output unit for formulas.

    Attributes:
        n_features_in_: Number of inputs.
        network_: The trained :class:`~ariasim.surrogates.kan_layers.KANNetwork`.
        history_: DataFrame, one row per epoch: ``epoch, train_loss, val_loss,
            n_active_edges, phase`` (losses of the data term, standardised scale).
        n_active_edges_: Edges left after pruning.
        formulas_: The symbolic form, ``{"mean": ...}`` plus ``"sigma"`` for the
            heteroscedastic losses and ``"mu"`` (mean of log y) for ``"lognormal"``:
            computed by :meth:`symbolic` with its default options on first access and
            cached until the next ``fit`` (call :meth:`symbolic` for other options).
        formula_: ``formulas_["mean"]``.
        symbolic_report_: After the extraction: one row per edge, see :meth:`symbolic`.

    Example:
        >>> import numpy as np
        >>> from ariasim.surrogates import KANRegressor
        >>> X = np.random.default_rng(0).uniform(-1, 1, (200, 2))
        >>> kan = KANRegressor(hidden=(), lamb=0.0, max_epochs=20, random_state=0)
        >>> kan = kan.fit(X, 2 * X[:, 0] + X[:, 1] ** 2)
        >>> sorted(kan.formulas_)
        ['mean']
        >>> [v.name for v in kan.formula_.variables]
        ['x0', 'x1']
        >>> bool(np.abs(kan.formula_(X) - kan.predict(X)).max() < 0.05)
        True
    """
    )

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (4,),
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        loss: str = "mse",
        lamb: float = 1e-3,
        lamb_entropy: float = 2.0,
        max_epochs: int = 200,
        lr: float = 1e-2,
        batch_size: int = 256,
        grid_updates: Sequence[int] = (0, 10, 30),
        grid_refine: Sequence[tuple[int, int]] = (),
        prune_threshold: float = 1e-2,
        standardize: bool = True,
        random_state: int | np.random.Generator | None = None,
        device: str = "cpu",
        variable_names: Sequence[str] | None = None,
        variable_units: Sequence[str] | None = None,
        target_name: str = "y",
        verbose: bool = False,
        optimizer: str = "auto",
        validation_fraction: float = 0.2,
        patience: int = 20,
        n_threads: int | None = 1,
        target_unit: str = "",
    ):
        self.hidden = hidden
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.grid_range = grid_range
        self.loss = loss
        self.lamb = lamb
        self.lamb_entropy = lamb_entropy
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.grid_updates = grid_updates
        self.grid_refine = grid_refine
        self.prune_threshold = prune_threshold
        self.standardize = standardize
        self.random_state = random_state
        self.device = device
        self.variable_names = variable_names
        self.variable_units = variable_units
        self.target_name = target_name
        self.verbose = verbose
        self.optimizer = optimizer
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_threads = n_threads
        self.target_unit = target_unit

    def _loss_name(self) -> str:
        return self.loss

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> KANRegressor:
        """Train the network.

        Arguments:
            X: Inputs ``(n, d)`` (array or DataFrame).
            y: Targets ``(n,)``; ``> 0`` for ``loss="lognormal"``.
            sample_weight: Non-negative per-row weights (default 1).

        Returns:
            self
        """
        if self.loss not in _LOSSES:
            raise ConfigError(f"must be one of {_LOSSES}", parameter="loss")
        arr = self._check_X(X, fitting=True)
        yy = self._check_y(y, arr.shape[0])
        try:
            yy = yy.astype(float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"y must be numeric: {exc}", column="y") from exc
        if not np.all(np.isfinite(yy)):
            raise InputError("y contains NaN or infinite values", column="y")
        if self.loss == "lognormal" and np.any(yy <= 0):
            raise InputError("loss='lognormal' needs y > 0", column="y")
        w = self._check_weights(sample_weight, arr.shape[0])
        self.variable_names_ = self._names(arr.shape[1])
        self._n_outputs = 1 if self.loss == "mse" else 2
        z = np.log(yy) if self.loss == "lognormal" else yy
        if self.standardize:
            self.y_mean_ = float(np.average(z, weights=w))
            self.y_scale_ = float(np.sqrt(np.average((z - self.y_mean_) ** 2, weights=w))) or 1.0
        else:
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        Xs = self._standardize_X(arr, w)
        self._fit_network(Xs, (z - self.y_mean_) / self.y_scale_, w)
        self._store(arr, yy, w)
        return self

    def _mu_sigma(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        raw = self._raw(X)
        mu = raw[:, 0] * self.y_scale_ + self.y_mean_
        if raw.shape[1] == 1:
            return mu, None
        log_s = np.clip(raw[:, 1], -LOG_SIGMA_CLAMP, LOG_SIGMA_CLAMP)
        return mu, np.exp(log_s) * self.y_scale_

    def predict(self, X: Any) -> np.ndarray:
        """The mean of y given x (log-normal: ``exp(mu + sigma^2 / 2)``)."""
        mu, sigma = self._mu_sigma(X)
        if self.loss == "lognormal":
            return np.exp(mu + 0.5 * sigma**2)  # type: ignore[operator]
        return mu

    def predict_median(self, X: Any) -> np.ndarray:
        """The median of y given x (``exp(mu)`` for log-normal, else the mean)."""
        mu, _ = self._mu_sigma(X)
        return np.exp(mu) if self.loss == "lognormal" else mu

    def predict_sigma(self, X: Any) -> np.ndarray:
        """sigma(x): absolute for ``"gaussian"``, of ``log y`` for ``"lognormal"``."""
        if self.loss not in ("gaussian", "lognormal"):
            raise ConfigError(
                "predict_sigma needs loss='gaussian' or 'lognormal'", parameter="loss"
            )
        _, sigma = self._mu_sigma(X)
        return sigma  # type: ignore[return-value]

    def symbolic(
        self,
        library: Sequence[str] | None = None,
        r2_threshold: float = 0.99,
        refit: bool = True,
        *,
        X: Any = None,
        y: Any = None,
        sample_weight: Any = None,
    ) -> dict[str, Formula]:
        """Snap every active edge to a library function and compose the network into
        Formulas in the original input variables (see
        :func:`ariasim.surrogates.kan_symbolic.extract`).

        Arguments:
            library: Names of candidate functions (default: all of
                :data:`~ariasim.surrogates.kan_symbolic.LIBRARY`).
            r2_threshold: Minimum R^2 of an edge's fit on its samples for a library
                function to be accepted; edges below it stay numeric (cubic polynomial).
            refit: Re-fit the composed formulas' constants on the data: least squares for
                ``"mse"``; for the heteroscedastic losses the mean by least squares
                weighted with 1/sigma(x)^2, then sigma by the likelihood.
            X, y, sample_weight: Data for the re-fit (default: the training data).

        Returns:
            ``{"mean": ...}``, plus ``"sigma"`` for the heteroscedastic losses and
            ``"mu"`` (mean of log y) for ``"lognormal"``.
        """
        return self._extract(
            library, r2_threshold, refit, None if X is None else (X, y, sample_weight)
        )


class KANClassifier(ClassifierMixin, BaseKAN):
    __doc__ = (
        """Kolmogorov-Arnold network binary classifier (weighted cross-entropy).

    The network outputs the logit of ``P(class 1 | x)``; ``classes_[1]`` is class 1.

    References:
        Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024).

    Arguments:"""
        + _COMMON_DOC
        + """
    Attributes:
        classes_: The two class labels.
        n_features_in_: Number of inputs.
        network_, history_, n_active_edges_, symbolic_report_: As for
            :class:`KANRegressor`.
        formulas_: ``{"probability": sigmoid(logit), "logit": logit}``, computed by
            :meth:`symbolic` with its default options on first access and cached until the
            next ``fit``.
        formula_: ``formulas_["probability"]``.

    Example:
        >>> import numpy as np
        >>> from ariasim.surrogates import KANClassifier
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> clf = KANClassifier(hidden=(), lamb=0.0, max_epochs=20, random_state=0)
        >>> clf = clf.fit(X, np.where(X[:, 0] + X[:, 1] > 0, "b", "a"))
        >>> clf.formula_.output.name
        'p'
        >>> sorted(clf.formulas_)
        ['logit', 'probability']
        >>> float(clf.score(X, np.where(X[:, 0] + X[:, 1] > 0, "b", "a"))) > 0.9
        True
    """
    )

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (4,),
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        lamb: float = 1e-3,
        lamb_entropy: float = 2.0,
        max_epochs: int = 200,
        lr: float = 1e-2,
        batch_size: int = 256,
        grid_updates: Sequence[int] = (0, 10, 30),
        grid_refine: Sequence[tuple[int, int]] = (),
        prune_threshold: float = 1e-2,
        standardize: bool = True,
        random_state: int | np.random.Generator | None = None,
        device: str = "cpu",
        variable_names: Sequence[str] | None = None,
        variable_units: Sequence[str] | None = None,
        target_name: str = "p",
        verbose: bool = False,
        optimizer: str = "auto",
        validation_fraction: float = 0.2,
        patience: int = 20,
        n_threads: int | None = 1,
    ):
        self.hidden = hidden
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.grid_range = grid_range
        self.lamb = lamb
        self.lamb_entropy = lamb_entropy
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.grid_updates = grid_updates
        self.grid_refine = grid_refine
        self.prune_threshold = prune_threshold
        self.standardize = standardize
        self.random_state = random_state
        self.device = device
        self.variable_names = variable_names
        self.variable_units = variable_units
        self.target_name = target_name
        self.verbose = verbose
        self.optimizer = optimizer
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_threads = n_threads

    _main_formula = "probability"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary only
        return tags

    def _loss_name(self) -> str:
        return "bce"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> KANClassifier:
        """Train the classifier.

        Arguments:
            X: Inputs ``(n, d)``.
            y: Labels with exactly two distinct values.
            sample_weight: Non-negative per-row weights.

        Returns:
            self
        """
        arr = self._check_X(X, fitting=True)
        yy = self._check_y(y, arr.shape[0])
        check_classification_targets(yy)
        classes, codes = np.unique(yy, return_inverse=True)
        if classes.shape[0] > 2:
            raise InputError(
                "Only binary classification is supported: KANClassifier needs "
                f"exactly 2 classes, got {classes.shape[0]}",
                column="y",
            )
        if classes.shape[0] < 2:
            raise InputError("KANClassifier needs exactly 2 classes, got 1 class", column="y")
        w = self._check_weights(sample_weight, arr.shape[0])
        self.classes_ = classes
        self.variable_names_ = self._names(arr.shape[1])
        self._n_outputs = 1
        Xs = self._standardize_X(arr, w)
        target = codes.astype(float)
        self._fit_network(Xs, target, w)
        self._store(arr, target, w)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The logit of ``P(classes_[1] | x)``."""
        return self._raw(X)[:, 0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, 2)``, columns in :attr:`classes_` order."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class label."""
        check_is_fitted(self, "network_")
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def symbolic(
        self,
        library: Sequence[str] | None = None,
        r2_threshold: float = 0.99,
        refit: bool = True,
        *,
        X: Any = None,
        y: Any = None,
        sample_weight: Any = None,
    ) -> dict[str, Formula]:
        """Symbolic form of the classifier (see :meth:`KANRegressor.symbolic`).

        The constants are re-fitted by the weighted logistic likelihood.

        Returns:
            ``{"probability": sigmoid(logit), "logit": logit}``; the probability lies in
            [0, 1] by construction.
        """
        check_is_fitted(self, "network_")
        if y is not None:
            y = (np.asarray(y).reshape(-1) == self.classes_[1]).astype(float)
        return self._extract(
            library, r2_threshold, refit, None if X is None else (X, y, sample_weight)
        )
