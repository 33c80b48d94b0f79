"""The training engine of the KANs, reusable for any small torch model of tabular data.

Full-batch Levenberg-Marquardt on the generalised Gauss-Newton matrix (with an analytic
Jacobian supplied by the model), full-batch L-BFGS, or mini-batch Adam; per-sample losses
(squared error, logistic, heteroscedastic Gaussian) with their curvature in the model
outputs; an epoch loop with grid updates, early stopping on a validation set and the
best state kept. :class:`~ariasim.surrogates.kan.KANRegressor` and
:class:`~ariasim.surrogates.kan.KANClassifier` call :func:`train`; another model (e.g. a
network of non-negative-weighted physical terms) can call it too.

What :func:`train` needs of the model (a :class:`torch.nn.Module` with outputs ``(n, a)``):

* ``model(x, first)``: the outputs; ``first`` is ``model.input_features(x)`` when the model
  has that method (cached input features, e.g. the first KAN layer's basis, recomputed
  only when the grids change), else ``None``;
* ``model.jacobian(x, first) -> (out, J)`` with ``J`` of shape ``(n, a, P)`` in the order
  of ``parameters_to_vector(model.parameters())``: only for ``optimizer="lm"``;
* ``model.forward_with_edges(x, first) -> (out, terms)`` and
  ``model.regularization(terms, 1.0, lamb_entropy)``: only with a penalty ``lamb > 0``;
* ``model.update_grids(x, grid_size, n_layers=...)``: only with grid-update epochs;
* optional ``model.n_active_edges()`` (recorded in the history) and ``model.snapshot()`` /
  ``model.restore(snap)`` (otherwise the state dict is copied).

Everything is deterministic for a given torch Generator inside :func:`deterministic`.

Example:
    >>> import torch
    >>> from ariasim.surrogates.training import TrainSettings, train
    >>> class Line(torch.nn.Module):  # y = a x + b, with its analytic Jacobian
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a = torch.nn.Parameter(torch.zeros(1))
    ...         self.b = torch.nn.Parameter(torch.zeros(1))
    ...     def forward(self, x, first=None):
    ...         return (self.a * x[:, :1] + self.b)
    ...     def jacobian(self, x, first=None):
    ...         J = torch.stack([x[:, 0], torch.ones_like(x[:, 0])], dim=1)[:, None, :]
    ...         return self(x), J
    >>> x = torch.linspace(-1, 1, 50)[:, None]
    >>> y = 3 * x[:, 0] - 1
    >>> w = torch.ones(50)
    >>> history = []
    >>> model = train(Line(), x, y, w, x, y, w, torch.Generator().manual_seed(0), history,
    ...               settings=TrainSettings(loss="mse", optimizer="lm"), epochs=20)
    >>> round(model.a.item(), 4), round(model.b.item(), 4)
    (3.0, -1.0)

References:
    Levenberg, Q. Appl. Math. 2 (1944) 164; Marquardt, J. SIAM 11 (1963) 431;
    Madsen, Nielsen and Tingleff, "Methods for non-linear least squares problems", DTU
    (2004): Levenberg-Marquardt with Nielsen's damping update.
    Schraudolph, Neural Computation 14 (2002) 1723: the generalised Gauss-Newton matrix.
    Nocedal, "Updating quasi-Newton matrices with limited storage", Math. Comp. 35 (1980)
    773 (L-BFGS); Kingma and Ba, "Adam", arXiv:1412.6980 (2014).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "LBFGS_HISTORY",
    "LBFGS_SCALE",
    "LM_MAX_PARAMS",
    "LOG_SIGMA_CLAMP",
    "LOSSES",
    "TrainSettings",
    "data_loss",
    "deterministic",
    "gauss_newton",
    "lm_iteration",
    "loss_curvature",
    "resolve_optimizer",
    "set_flat",
    "train",
]

#: Per-sample losses: squared error, logistic (outputs a logit), heteroscedastic Gaussian
#: (outputs mean and log sigma; "lognormal" is the Gaussian of log y).
LOSSES = ("mse", "bce", "gaussian", "lognormal")
#: log sigma outputs are clamped to +-this in the Gaussian losses.
LOG_SIGMA_CLAMP = 12.0
# torch's L-BFGS skips curvature updates with y.s < 1e-10 (absolute), which in float32
# happens early once the loss is small: L-BFGS then degrades to gradient descent. The
# minimiser is invariant to scaling the objective, so it is scaled up instead (pykan
# patches the threshold in a copy of the optimiser).
LBFGS_SCALE = 1e6
# L-BFGS memory: the networks have few parameters (hundreds), so a long curvature history
# is cheap and cuts the steps to a given error by about 2x over torch's/pykan's 10
# (5 seeds on the benchmark problem; 100 was no better than 50).
LBFGS_HISTORY = 50
#: Levenberg-Marquardt: "auto" uses it up to this many parameters (the damped normal
#: equations cost O(rows * outputs * P^2) to form and O(P^3) to solve per iteration).
LM_MAX_PARAMS = 1000
# rows * outputs * parameters of one Jacobian chunk (bounds the memory for large data)
_LM_CHUNK = 1 << 22
# trial steps per LM iteration before the iteration gives up (damping raised each time)
_LM_MAX_TRIES = 12
_LM_MU0 = 1e-3


@dataclass(frozen=True)
class TrainSettings:
    """Options of :func:`train` that stay fixed over a fit.

    Arguments:
        loss: One of :data:`LOSSES`.
        optimizer: ``"lm"``, ``"lbfgs"`` or ``"adam"`` (see :func:`resolve_optimizer`).
        lr: Adam's learning rate; L-BFGS's step scale (unused by LM).
        batch_size: Adam's mini-batch size.
        patience: Epochs without validation improvement before stopping (not before the
            last scheduled grid update).
        lamb_entropy: Weight of the entropy term in the model's ``regularization``.
        verbose: Print the losses of every epoch.
        n_outputs: Number of model outputs (sizes the Jacobian chunks of LM).

    Example:
        >>> TrainSettings(loss="gaussian", optimizer="lm", n_outputs=2).patience
        20
    """

    loss: str
    optimizer: str
    lr: float = 1e-2
    batch_size: int = 256
    patience: int = 20
    lamb_entropy: float = 2.0
    verbose: bool = False
    n_outputs: int = 1


@contextlib.contextmanager
def deterministic(n_threads: int | None = None) -> Iterator[None]:
    """Switch torch's deterministic algorithms on (and optionally set the number of CPU
    threads), restoring the previous settings afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)
        torch.set_num_threads(threads)


def set_flat(params: Sequence[torch.Tensor], theta: torch.Tensor) -> None:
    """Copy the flat vector ``theta`` into ``params`` in place (dtype converted)."""
    offset = 0
    with torch.no_grad():
        for p in params:
            k = p.numel()
            p.copy_(theta[offset : offset + k].view_as(p))
            offset += k


def resolve_optimizer(requested: str, n_params: int, lamb: float) -> str:
    """The optimiser actually used: ``"auto"`` is Levenberg-Marquardt without the
    sparsity penalty (``lamb == 0``) and up to :data:`LM_MAX_PARAMS` parameters, else
    mini-batch Adam (which scales to any size, and whose slow, noisy descent with the
    penalty on keeps the splines smooth and sparsifies as the data term is fitted;
    LM fits the data term to its optimum within tens of iterations, whose splines
    can be rougher near the data's edges). Any other value is returned as given."""
    if requested != "auto":
        return str(requested)
    return "lm" if n_params <= LM_MAX_PARAMS and float(lamb) == 0 else "adam"


def data_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample loss ``(n,)`` of model outputs ``out`` ``(n, a)`` for targets ``y``."""
    if loss == "mse":
        return (out[:, 0] - y) ** 2
    if loss == "bce":
        return torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], y, reduction="none")
    log_s = out[:, 1].clamp(-LOG_SIGMA_CLAMP, LOG_SIGMA_CLAMP)
    return (
        log_s + 0.5 * (y - out[:, 0]) ** 2 * torch.exp(-2.0 * log_s) + 0.5 * math.log(2 * math.pi)
    )


def loss_curvature(
    out: torch.Tensor, y: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``(n, a)`` of the per-sample loss with respect to the model outputs
    and the diagonal ``(n, a)`` of its Fisher information (the expected Hessian),
    the outer curvature of the generalised Gauss-Newton matrix: 2 for squared error,
    ``p (1 - p)`` for the logistic loss (its exact Hessian), ``exp(-2 log sigma)`` for a
    Gaussian mean and 2 for its ``log sigma`` (zero where ``log sigma`` is clamped)."""
    mu = out[:, 0]
    if loss == "mse":
        r = mu - y
        return (2.0 * r)[:, None], torch.full_like(out, 2.0)
    if loss == "bce":
        p = torch.sigmoid(mu)
        return (p - y)[:, None], (p * (1.0 - p))[:, None]
    raw = out[:, 1]
    inside = (raw.abs() <= LOG_SIGMA_CLAMP).to(out.dtype)
    log_s = raw.clamp(-LOG_SIGMA_CLAMP, LOG_SIGMA_CLAMP)
    prec = torch.exp(-2.0 * log_s)
    r = y - mu
    grad = torch.stack([-r * prec, (1.0 - r * r * prec) * inside], dim=1)
    return grad, torch.stack([prec, 2.0 * inside], dim=1)


def gauss_newton(
    net: torch.nn.Module,
    Xt: torch.Tensor,
    yt: torch.Tensor,
    wt: torch.Tensor,
    first: Any,
    settings: TrainSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ``g`` and generalised Gauss-Newton matrix ``H = J^T Lambda J / n``
    (Schraudolph 2002) of the weighted mean data loss, float64, accumulated over row
    chunks of the model's analytic Jacobian ``net.jacobian(x, first)``."""
    n = Xt.shape[0]
    n_params = sum(p.numel() for p in net.parameters())
    rows = max(1, _LM_CHUNK // (settings.n_outputs * n_params))
    g = torch.zeros(n_params, dtype=torch.float64, device=Xt.device)
    H = torch.zeros(n_params, n_params, dtype=torch.float64, device=Xt.device)
    for start in range(0, n, rows):
        sl = slice(start, start + rows)
        out, J = net.jacobian(Xt[sl], _rows(first, sl))  # type: ignore[operator]
        grad, fisher = loss_curvature(out, yt[sl], settings.loss)
        w = wt[sl, None].double()
        J = J.double()
        g += torch.einsum("nap,na->p", J, grad.double() * w)
        Jw = (J * (fisher.double() * w).sqrt().unsqueeze(-1)).flatten(0, 1)
        H += Jw.T @ Jw
    return g / n, H / n


def lm_iteration(
    net: torch.nn.Module,
    Xt: torch.Tensor,
    yt: torch.Tensor,
    wt: torch.Tensor,
    first: Any,
    lamb: float,
    state: dict[str, float],
    settings: TrainSettings,
) -> float:
    """One Levenberg-Marquardt iteration (one "epoch" of ``optimizer="lm"``).

    Solves ``(H + mu D) delta = -g`` by Cholesky, with ``H`` the generalised
    Gauss-Newton matrix of the data term, ``D`` its diagonal (Marquardt's scaling,
    floored) and ``g`` the gradient of the full objective; the step is taken if the
    objective decreases (gain ratio ``rho`` of actual to predicted reduction > 0),
    and the damping follows Nielsen's rule: ``mu *= max(1/3, 1 - (2 rho - 1)^3)``
    on success, else ``mu *= nu, nu *= 2`` and a new trial (at most 12). With the
    sparsity penalty (``lamb > 0``) its gradient is included but not its curvature
    (the L1 part is piecewise linear in the edge values, so its Gauss-Newton curvature
    is zero almost everywhere; the entropy part's is dropped), and the acceptance test
    uses the full objective.

    ``state`` carries ``mu``, ``nu`` and the objective ``loss`` (with its data term
    ``data``) at the current parameters between iterations; drop ``loss`` when the
    function changes otherwise (grid updates). Returns the data term afterwards.

    References:
        Levenberg, "A method for the solution of certain non-linear problems in least
        squares", Q. Appl. Math. 2 (1944) 164.
        Marquardt, "An algorithm for least-squares estimation of nonlinear
        parameters", J. SIAM 11 (1963) 431.
        Nielsen, "Damping parameter in Marquardt's method", IMM-REP-1999-05, DTU;
        Madsen, Nielsen and Tingleff, "Methods for non-linear least squares
        problems", DTU lecture notes (2004), section 3.2.
        Schraudolph, "Fast curvature matrix-vector products for second-order
        gradient descent", Neural Computation 14 (2002) 1723 (generalised
        Gauss-Newton matrix).
    """
    params = [p for p in net.parameters()]
    lamb_e = float(settings.lamb_entropy)

    @torch.no_grad()
    def objective() -> tuple[float, float]:
        if lamb > 0:
            out, phis = net.forward_with_edges(Xt, first)  # type: ignore[operator]
            reg = float(net.regularization(phis, 1.0, lamb_e))  # type: ignore[operator]
        else:
            out, reg = net(Xt, first), 0.0
        data = float((data_loss(out, yt, settings.loss).double() * wt.double()).mean())
        return data + lamb * reg, data

    g, H = gauss_newton(net, Xt, yt, wt, first, settings)
    if lamb > 0:
        for p in params:
            p.grad = None
        _, phis = net.forward_with_edges(Xt, first)  # type: ignore[operator]
        reg_grad = torch.autograd.grad(
            net.regularization(phis, 1.0, lamb_e),
            params,  # type: ignore[operator]
            allow_unused=True,
        )
        g = (
            g
            + lamb
            * torch.cat(
                [
                    (r if r is not None else torch.zeros_like(p)).flatten()
                    for r, p in zip(reg_grad, params, strict=True)
                ]
            ).double()
        )
    if "loss" not in state:
        state["loss"], state["data"] = objective()
    if not bool(torch.isfinite(g).all()) or not bool(torch.isfinite(H).all()):
        return state["data"]
    with torch.no_grad():
        theta = torch.nn.utils.parameters_to_vector(params).double()
        diag = H.diagonal()
        scale = diag.clamp(min=1e-10 * float(diag.max()) + 1e-30)
        loss0 = state["loss"]
        for _ in range(_LM_MAX_TRIES):
            A = H + torch.diag(state["mu"] * scale)
            chol, info = torch.linalg.cholesky_ex(A)
            if int(info) != 0:
                state["mu"] *= state["nu"]
                state["nu"] *= 2.0
                continue
            delta = -torch.cholesky_solve(g[:, None], chol)[:, 0]
            predicted = 0.5 * float(delta @ (state["mu"] * scale * delta - g))
            set_flat(params, theta + delta)
            loss1, data1 = objective()
            rho = (loss0 - loss1) / predicted if predicted > 0 else -1.0
            if math.isfinite(loss1) and rho > 0:
                state["mu"] *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                state["mu"] = max(state["mu"], 1e-12)
                state["nu"] = 2.0
                state["loss"], state["data"] = loss1, data1
                return data1
            state["mu"] *= state["nu"]
            state["nu"] *= 2.0
        # no acceptable step: keep the parameters
        set_flat(params, theta)
    return state["data"]


def _rows(first: Any, idx: Any) -> Any:
    """Rows ``idx`` of cached input features (a tensor, a tuple of tensors, or None)."""
    if first is None:
        return None
    if isinstance(first, torch.Tensor):
        return first[idx]
    return tuple(f[idx] for f in first)


def _snapshot(net: torch.nn.Module) -> Any:
    if hasattr(net, "snapshot"):
        return net.snapshot()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _restore(net: torch.nn.Module, snap: Any) -> None:
    if hasattr(net, "restore"):
        net.restore(snap)
    else:
        net.load_state_dict(snap)


def _n_active(net: torch.nn.Module) -> int | None:
    count: Callable[[], int] | None = getattr(net, "n_active_edges", None)
    return None if count is None else count()


def train(
    net: torch.nn.Module,
    Xt: torch.Tensor,
    yt: torch.Tensor,
    wt: torch.Tensor,
    Xv: torch.Tensor,
    yv: torch.Tensor,
    wv: torch.Tensor,
    gen: torch.Generator,
    history: list[dict[str, Any]],
    *,
    settings: TrainSettings,
    epochs: int,
    lamb: float = 0.0,
    phase: str = "train",
    grid_updates: set[int] | None = None,
    grid_refine: dict[int, int] | None = None,
    start_epoch: int = 0,
) -> torch.nn.Module:
    """Train ``net`` in place; return it in its best state (lowest validation loss).

    Arguments:
        net: The model (see the module docstring for what it must provide).
        Xt, yt, wt: Training inputs, targets and weights (weights with mean 1).
        Xv, yv, wv: Validation set for early stopping (pass the training tensors
            themselves for none: the training loss is then used).
        gen: Torch Generator for the mini-batch order and the grid-update rows.
        history: List that one dict per epoch is appended to: ``epoch, train_loss,
            val_loss, n_active_edges, phase``.
        settings: The fixed options (loss, optimizer, ...).
        epochs: Maximum number of epochs (LM: one iteration; L-BFGS: one step of up to
            20 iterations; Adam: one pass over the mini-batches).
        lamb: Weight of the model's ``regularization`` (0: none).
        phase: Label recorded in the history.
        grid_updates: Epochs at which ``net.update_grids`` moves the grids to the data
            (at epoch 0 of a fresh run, only the first layer's).
        grid_refine: ``{epoch: grid_size}``: refine the grids at that epoch.
        start_epoch: Epoch number of the first epoch (for a second phase).
    """
    grid_updates = set() if grid_updates is None else grid_updates
    grid_refine = {} if grid_refine is None else grid_refine
    n = Xt.shape[0]
    method = settings.optimizer
    lbfgs, lm = method == "lbfgs", method == "lm"
    full_batch = lbfgs or lm
    bs = n if full_batch else min(int(settings.batch_size), n)
    lamb_e = float(settings.lamb_entropy)
    loss_name = settings.loss
    lm_state = {"mu": _LM_MU0, "nu": 2.0}

    def make_opt() -> torch.optim.Optimizer | None:
        if lm:
            return None
        if lbfgs:
            # tolerances off (as pykan): the defaults stop the inner iterations early
            # once float32 loss changes get small, long before convergence
            return torch.optim.LBFGS(
                net.parameters(),
                lr=settings.lr,
                max_iter=20,
                history_size=LBFGS_HISTORY,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-32,
                tolerance_change=1e-32,
            )
        return torch.optim.Adam(net.parameters(), lr=settings.lr)

    def objective(
        xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor, first: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if lamb > 0:
            out, phis = net.forward_with_edges(xb, first)  # type: ignore[operator]
            data = (data_loss(out, yb, loss_name) * wb).mean()
            return data + lamb * net.regularization(  # type: ignore[operator]
                phis, 1.0, lamb_e
            ), data
        data = (data_loss(net(xb, first), yb, loss_name) * wb).mean()
        return data, data

    def first_features() -> Any:
        # inputs of the first layer are fixed: its features change only with its grid
        features = getattr(net, "input_features", None)
        if features is None:
            return None
        with torch.no_grad():
            return features(Xt)

    # no hold-out: the validation loss is the training loss after the epoch
    same = Xv is Xt or (
        Xv.shape == Xt.shape
        and bool(torch.equal(Xv, Xt))
        and bool(torch.equal(yv, yt))
        and bool(torch.equal(wv, wt))
    )
    opt = make_opt()
    first = first_features()
    best_val, best, wait = math.inf, _snapshot(net), 0
    grid_sample = Xt[torch.randperm(n, generator=gen)[:4096].to(Xt.device)]
    for epoch in range(epochs):
        if epoch in grid_updates or epoch in grid_refine:
            # before any training the hidden activations carry no information:
            # an update at epoch 0 moves only the first layer's grids to the data
            net.update_grids(
                grid_sample,
                grid_refine.get(epoch),  # type: ignore[operator]
                n_layers=1 if epoch == 0 and start_epoch == 0 else None,
            )
            if epoch in grid_refine:  # new coefficient tensors: new optimiser
                opt = make_opt()
            first = first_features()
            lm_state.pop("loss", None)
            wait = 0
        net.train()
        total, count = 0.0, 0
        if lm:
            total, count = lm_iteration(net, Xt, yt, wt, first, lamb, lm_state, settings), 1
        elif lbfgs:
            assert opt is not None

            def closure(opt: torch.optim.Optimizer = opt, first: Any = first) -> torch.Tensor:
                opt.zero_grad()
                loss, _ = objective(Xt, yt, wt, first)
                loss = loss * LBFGS_SCALE
                loss.backward()
                return loss

            opt.step(closure)
            with torch.no_grad():
                total, count = float(objective(Xt, yt, wt, first)[1]), 1
        else:
            assert opt is not None
            order = torch.randperm(n, generator=gen).to(Xt.device)
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                loss, data = objective(Xt[idx], yt[idx], wt[idx], _rows(first, idx))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(data.detach()) * len(idx)
                count += len(idx)
        net.eval()
        if same and full_batch:  # the training loss above is already the validation loss
            val = total
        else:
            with torch.no_grad():
                val = float(
                    (data_loss(net(Xv, first if same else None), yv, loss_name) * wv).mean()
                )
        train_loss = total / max(count, 1)
        history.append(
            {
                "epoch": start_epoch + epoch,
                "train_loss": train_loss,
                "val_loss": val,
                "n_active_edges": _n_active(net),
                "phase": phase,
            }
        )
        if settings.verbose:
            print(
                f"[{type(net).__name__} {phase}] epoch {start_epoch + epoch}: "
                f"train {train_loss:.5g} val {val:.5g} edges {_n_active(net)}"
            )
        if not math.isfinite(val):
            break
        crit = val
        if lm and lamb > 0:
            # LM fits the data term within a few iterations, long before the penalty
            # has shrunk the unneeded edges: selecting on the data loss alone would
            # return that early, unsparsified state. Select on the penalised objective.
            if same:
                crit = lm_state["loss"]
            else:
                with torch.no_grad():
                    crit = float(objective(Xv, yv, wv)[0])
        if crit < best_val - 1e-7 * abs(best_val) or best_val == math.inf:
            best_val, best, wait = crit, _snapshot(net), 0
        else:
            wait += 1
            pending = [e for e in (*grid_updates, *grid_refine) if e > epoch]
            if wait >= settings.patience and not pending:
                break
    _restore(net, best)
    return net
