"""Kolmogorov-Arnold network building blocks in torch: B-spline basis, layer, network.

Every edge ``i -> o`` of a layer carries a learnable univariate function

    phi_oi(x) = w_oi * silu(x) + sum_k c_oik B_k(x)

where the B-splines ``B_k`` of order ``k`` live on a knot vector *per input* that all the
edges leaving that input share. The basis of each input is therefore computed once per
forward pass and the layer is one matrix product of the ``(n, in * (G + k))`` basis with
the ``(in * (G + k), out)`` coefficient matrix (plus one for the SiLU base), instead of
``in * out`` separate spline evaluations as in the reference implementation. Each node
sums its incoming edges and adds a bias (the bias absorbs the constants of pruned edges
and keeps edge offsets out of the sparsity penalty).

References:
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024).
    Blealtan, "efficient-kan" (GitHub): the shared-basis formulation as one matmul.
    de Boor, "A Practical Guide to Splines", Springer (1978): the Cox-de Boor recursion.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "KANLayer",
    "KANNetwork",
    "b_spline_basis",
    "b_spline_basis_and_derivative",
    "uniform_knots",
]


def uniform_knots(
    low: float,
    high: float,
    grid_size: int,
    order: int,
    n_inputs: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform knot vectors on ``[low, high]`` extended by ``order`` knots on each side.

    Arguments:
        low: Lower end of the grid.
        high: Upper end of the grid.
        grid_size: Number of grid intervals ``G``.
        order: Spline order ``k`` (3: cubic).
        n_inputs: Number of inputs (one identical knot vector each).
        dtype: Tensor dtype.

    Returns:
        Knots of shape ``(n_inputs, G + 2k + 1)``.
    """
    h = (high - low) / grid_size
    t = torch.arange(-order, grid_size + order + 1, dtype=dtype) * h + low
    return t.expand(n_inputs, -1).contiguous()


_TABLES: dict[int, tuple[Any, int, list[tuple[torch.Tensor, ...]]]] = {}


def _knot_tables(knots: torch.Tensor, order: int) -> list[tuple[torch.Tensor, ...]]:
    """Per recursion level ``p = 1..order`` the affine coefficients of the two
    Cox-de Boor weights, ``(x - t_j) / (t_{j+p} - t_j) = a_l x + b_l`` and
    ``(t_{j+p+1} - x) / (t_{j+p+1} - t_{j+1}) = a_r x + b_r``, each ``(1, d, .)``.
    Cached per knot tensor (weakly, checked by identity and version): the knots change
    only at grid updates, the basis is evaluated at every step."""
    key = id(knots)
    hit = _TABLES.get(key)
    if hit is not None and hit[0]() is knots and hit[1] == knots._version and len(hit[2]) == order:
        return hit[2]
    t = knots.detach().unsqueeze(0)
    tables = []
    for p in range(1, order + 1):
        lo, hi = t[..., : -(p + 1)], t[..., p + 1 :]
        inv_l = 1.0 / (t[..., p:-1] - lo)
        inv_r = 1.0 / (hi - t[..., 1:-p])
        tables.append((inv_l, -lo * inv_l, -inv_r, hi * inv_r))
    if len(_TABLES) > 64:
        for k in [k for k, v in _TABLES.items() if v[0]() is None]:
            del _TABLES[k]
    _TABLES[key] = (weakref.ref(knots), knots._version, tables)
    return tables


def _basis_levels(
    x: torch.Tensor, knots: torch.Tensor, order: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cox-de Boor recursion without autograd: the basis of order ``order`` and the one
    of order ``order - 1`` (None for order 0), both ``(n, d, .)``."""
    x = x.unsqueeze(-1)
    t = knots.unsqueeze(0)
    # indicator of [t_j, t_{j+1}) = 1{x >= t_j} - 1{x >= t_{j+1}} (knots non-decreasing)
    ge = (x >= t).to(x.dtype)
    basis = ge[..., :-1] - ge[..., 1:]
    prev = None
    for a_l, b_l, a_r, b_r in _knot_tables(knots, order):
        left = torch.addcmul(b_l, x, a_l).mul_(basis[..., :-1])
        prev, basis = basis, left.addcmul_(torch.addcmul(b_r, x, a_r), basis[..., 1:])
    return basis, prev


class _BSplineBasis(torch.autograd.Function):
    """B-spline basis with the analytic derivative in ``x``
    (``B'_{j,p} = p (B_{j,p-1} / (t_{j+p} - t_j) - B_{j+1,p-1} / (t_{j+p+1} - t_{j+1}))``):
    one small backward instead of differentiating through every step of the recursion."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        knots: torch.Tensor,  # type: ignore[override]
        order: int,
    ) -> torch.Tensor:
        basis, prev = _basis_levels(x, knots, order)
        ctx.order = order
        if order > 0:  # constants of the derivative (knots are not differentiated)
            inv_l, _, neg_inv_r, _ = _knot_tables(knots, order)[-1]
            ctx.slopes = (inv_l, neg_inv_r)
        ctx.save_for_backward(prev if prev is not None else basis)
        return basis

    @staticmethod
    def backward(
        ctx: Any,
        grad: torch.Tensor,  # type: ignore[override]
    ) -> tuple[torch.Tensor | None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (prev,) = ctx.saved_tensors
        p = ctx.order
        if p == 0:
            return grad.new_zeros(grad.shape[:-1]), None, None
        inv_l, neg_inv_r = ctx.slopes
        slope = torch.addcmul(prev[..., :-1] * inv_l, prev[..., 1:], neg_inv_r)
        return (grad * slope).sum(-1) * p, None, None


def b_spline_basis(x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    """All B-splines of order ``order`` on per-input knot vectors (Cox-de Boor recursion).

    Differentiable in ``x`` (analytic derivative, not through the recursion); the knots
    are treated as constants.

    Arguments:
        x: Points, shape ``(n, d)``.
        knots: Knot vectors, shape ``(d, m)`` (non-decreasing, distinct interior knots).
        order: Spline order ``k``.

    Returns:
        Basis values of shape ``(n, d, m - k - 1)``; zero outside ``[t_k, t_{m-k-1}]``.
    """
    if x.requires_grad and torch.is_grad_enabled():
        return _BSplineBasis.apply(x, knots, order)  # type: ignore[no-any-return]
    with torch.no_grad():
        return _basis_levels(x, knots, order)[0]


@torch.no_grad()
def b_spline_basis_and_derivative(
    x: torch.Tensor, knots: torch.Tensor, order: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The B-spline basis (as :func:`b_spline_basis`) and its derivative in ``x``
    (``B'_{j,p} = p (B_{j,p-1} / (t_{j+p} - t_j) - B_{j+1,p-1} / (t_{j+p+1} - t_{j+1}))``,
    de Boor 1978), both ``(n, d, m - k - 1)``, without autograd."""
    basis, prev = _basis_levels(x, knots, order)
    if prev is None:
        return basis, torch.zeros_like(basis)
    inv_l, _, neg_inv_r, _ = _knot_tables(knots, order)[-1]
    slope = torch.addcmul(prev[..., :-1] * inv_l, prev[..., 1:], neg_inv_r)
    return basis, slope.mul_(order)


def _silu_derivative(x: torch.Tensor) -> torch.Tensor:
    """d silu(x) / dx = sigma(x) (1 + x (1 - sigma(x)))."""
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


class KANLayer(nn.Module):
    """One KAN layer: ``in_features * out_features`` learnable edge functions.

    Arguments:
        in_features: Number of inputs.
        out_features: Number of outputs (nodes).
        grid_size: Number of spline grid intervals ``G``.
        spline_order: B-spline order ``k``.
        grid_range: Initial grid interval (updated to the data by :meth:`update_grid`).
        generator: Torch random generator for the initialisation.
        noise_scale: Scale of the random initial spline coefficients.

    Example:
        >>> import torch
        >>> layer = KANLayer(2, 3, generator=torch.Generator().manual_seed(0))
        >>> tuple(layer(torch.zeros(5, 2)).shape), tuple(layer.edge_values(torch.zeros(5, 2)).shape)
        ((5, 3), (5, 3, 2))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        generator: torch.Generator | None = None,
        noise_scale: float = 0.1,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.register_buffer(
            "knots",
            uniform_knots(
                float(grid_range[0]), float(grid_range[1]), grid_size, spline_order, in_features
            ),
        )
        self.register_buffer("mask", torch.ones(out_features, in_features))
        n_basis = grid_size + spline_order
        coef = torch.rand(out_features, in_features, n_basis, generator=generator) - 0.5
        self.coef = nn.Parameter(coef * (2.0 * noise_scale / grid_size**0.5))
        base = torch.rand(out_features, in_features, generator=generator) * 2 - 1
        self.base_weight = nn.Parameter(base / in_features**0.5)
        self.bias = nn.Parameter(torch.zeros(out_features))

    @property
    def n_basis(self) -> int:
        """Number of B-splines per input, ``G + k``."""
        return self.knots.shape[1] - self.spline_order - 1

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The B-spline basis ``(n, in, K)`` and SiLU ``(n, in)`` of inputs ``x``. They
        depend only on ``x`` and the knots: for fixed inputs (the first layer during
        full-batch training) they can be computed once per grid and passed to
        :meth:`forward`."""
        return b_spline_basis(x, self.knots, self.spline_order), torch.nn.functional.silu(x)

    def forward(
        self,
        x: torch.Tensor,
        *,
        edges: bool = False,
        features: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Node outputs ``(n, out)``; with ``edges=True`` also the edge values
        ``(n, out, in)`` (needed for the sparsity penalty). ``features``: precomputed
        :meth:`features` of ``x`` (must match ``x`` and the current knots)."""
        basis, base = self.features(x) if features is None else features
        coef = self.coef * self.mask.unsqueeze(-1)
        wb = self.base_weight * self.mask
        if not edges:
            y = basis.flatten(1) @ coef.flatten(1).T + base @ wb.T
            return y + self.bias
        phi = torch.einsum("nik,oik->noi", basis, coef) + base.unsqueeze(1) * wb
        return phi.sum(-1) + self.bias, phi

    def edge_values(self, x: torch.Tensor) -> torch.Tensor:
        """Values of every edge function at the layer inputs ``x``: ``(n, out, in)``."""
        return self.forward(x, edges=True)[1]  # type: ignore[index]

    def spline_values(self, x: torch.Tensor) -> torch.Tensor:
        """Spline part (no base, no mask) of every edge at ``x``: ``(n, out, in)``."""
        basis = b_spline_basis(x, self.knots, self.spline_order)
        return torch.einsum("nik,oik->noi", basis, self.coef)

    @torch.no_grad()
    def update_grid(
        self,
        x: torch.Tensor,
        grid_size: int | None = None,
        grid_eps: float = 0.02,
        ridge: float = 1e-6,
    ) -> None:
        """Move the knots to the quantiles of ``x`` (optionally a finer grid) and
        re-project the splines onto the new basis by least squares.

        Arguments:
            x: Samples of this layer's inputs, ``(n, in)``.
            grid_size: New number of intervals (default: unchanged). Larger: refinement.
            grid_eps: Mixing weight of a uniform grid into the quantile grid (1: uniform),
                as in pykan; keeps intervals from collapsing where data are dense.
            ridge: Tikhonov regularisation of the projection (relative to the basis norm).
        """
        g_new = grid_size or self.grid_size
        k = self.spline_order
        xs = torch.sort(x.detach(), dim=0).values
        n = xs.shape[0]
        lo, hi = xs[0], xs[-1]
        span = torch.clamp(hi - lo, min=1e-3)
        hi = lo + span
        # evaluation points: the data plus a uniform cover of their range, so that the
        # re-projection is determined on every new interval (points outside the new
        # grid, where the basis is incomplete, would distort the fit)
        cover = torch.linspace(0, 1, 4 * (g_new + k), dtype=x.dtype, device=x.device)
        pts = torch.cat([xs, lo + cover[:, None] * span], dim=0)
        target = self.spline_values(pts).double()  # (m, out, in)
        idx = torch.linspace(0, n - 1, g_new + 1, device=x.device).round().long()
        adaptive = xs[idx]  # (G+1, in)
        adaptive[0], adaptive[-1] = lo, hi
        uniform = (
            lo + torch.linspace(0, 1, g_new + 1, dtype=x.dtype, device=x.device)[:, None] * span
        )
        grid = grid_eps * uniform + (1 - grid_eps) * adaptive
        # keep interior knots strictly increasing
        min_gap = span / (g_new * 100.0)
        for j in range(1, g_new + 1):
            grid[j] = torch.maximum(grid[j], grid[j - 1] + min_gap)
        h = (grid[-1] - grid[0]) / g_new
        ext = torch.arange(1, k + 1, dtype=x.dtype, device=x.device)[:, None] * h
        knots = torch.cat([grid[0] - ext.flip(0), grid, grid[-1] + ext], dim=0).T.contiguous()
        basis = b_spline_basis(pts, knots, k).double()  # (m, in, K')
        A = basis.permute(1, 0, 2)  # (in, m, K')
        B = target.permute(2, 0, 1)  # (in, m, out)
        AtA = A.transpose(1, 2) @ A
        lam = ridge * AtA.diagonal(dim1=1, dim2=2).mean(-1).clamp(min=1e-12)
        AtA = AtA + lam[:, None, None] * torch.eye(A.shape[2], dtype=A.dtype, device=A.device)
        coef = torch.linalg.solve(AtA, A.transpose(1, 2) @ B)  # (in, K', out)
        self.knots = knots.to(self.knots.dtype)
        self.grid_size = g_new
        new = coef.permute(2, 0, 1).to(self.coef.dtype).contiguous()
        if new.shape == self.coef.shape:  # in place: optimiser state stays attached
            self.coef.data.copy_(new)
        else:
            self.coef = nn.Parameter(new)


class KANNetwork(nn.Module):
    """A stack of :class:`KANLayer` s with widths ``widths = [d_in, h_1, ..., d_out]``.

    Arguments:
        widths: Layer widths, input first.
        grid_size: Spline grid intervals.
        spline_order: Spline order.
        grid_range: Initial grid interval.
        generator: Torch random generator for the initialisation.

    Example:
        >>> import torch
        >>> net = KANNetwork([2, 3, 1], generator=torch.Generator().manual_seed(0))
        >>> x = torch.zeros(4, 2)
        >>> out, J = net.jacobian(x)
        >>> tuple(out.shape), J.shape[-1] == sum(p.numel() for p in net.parameters())
        ((4, 1), True)
        >>> net.n_active_edges()
        9
    """

    def __init__(
        self,
        widths: Sequence[int],
        *,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.widths = list(widths)
        self.layers = nn.ModuleList(
            KANLayer(
                a,
                b,
                grid_size=grid_size,
                spline_order=spline_order,
                grid_range=grid_range,
                generator=generator,
            )
            for a, b in zip(self.widths[:-1], self.widths[1:], strict=True)
        )

    def forward(
        self, x: torch.Tensor, first: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Network output ``(n, d_out)``. ``first``: precomputed
        :meth:`KANLayer.features` of ``x`` for the first layer."""
        for i, layer in enumerate(self.layers):
            x = layer(x, features=first if i == 0 else None)
        return x

    def input_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first layer's :meth:`KANLayer.features` of ``x`` (fixed while its grid is:
        the training engine computes them once and passes them back as ``first``)."""
        return self.layers[0].features(x)

    def snapshot(self) -> list[tuple[int, dict[str, torch.Tensor]]]:
        """Copies of every layer's grid size, parameters and buffers (much cheaper than a
        deepcopy of the module, which dominated the epoch time of small networks)."""
        return [
            (layer.grid_size, {k: v.detach().clone() for k, v in layer.state_dict().items()})
            for layer in self.layers
        ]

    def restore(self, snap: list[tuple[int, dict[str, torch.Tensor]]]) -> None:
        """Put a :meth:`snapshot` back (also across grid refinements)."""
        for layer, (grid_size, state) in zip(self.layers, snap, strict=True):
            layer.grid_size = grid_size
            if layer.coef.shape != state["coef"].shape:
                layer.coef = nn.Parameter(state["coef"].clone())
            layer.knots = state["knots"].clone()
            layer.load_state_dict(state)

    def forward_with_edges(
        self, x: torch.Tensor, first: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output and every layer's edge values (for the sparsity penalty)."""
        phis = []
        for i, layer in enumerate(self.layers):
            x, phi = layer(x, edges=True, features=first if i == 0 else None)
            phis.append(phi)
        return x, phis

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The inputs of every layer (``x`` first), evaluated without gradients."""
        out = []
        with torch.no_grad():
            for layer in self.layers:
                out.append(x)
                x = layer(x)
        return out

    @torch.no_grad()
    def update_grids(
        self, x: torch.Tensor, grid_size: int | None = None, n_layers: int | None = None
    ) -> None:
        """Update the grids of the first ``n_layers`` layers (default all) to their input
        distributions, layer by layer."""
        for layer in self.layers[:n_layers]:
            layer.update_grid(x, grid_size)
            x = layer(x)

    def regularization(
        self, phis: Sequence[torch.Tensor], lamb_l1: float = 1.0, lamb_entropy: float = 2.0
    ) -> torch.Tensor:
        """KAN sparsity penalty (Liu et al. eq. 2.17-2.20): per layer the L1 norm of the
        edges' mean absolute activations plus ``lamb_entropy`` times their entropy."""
        total = phis[0].new_zeros(())
        for phi in phis:
            a = phi.abs().mean(0)  # (out, in)
            s = a.sum()
            p = a / (s + 1e-12)
            entropy = -(p * torch.log(p + 1e-12)).sum()
            total = total + lamb_l1 * s + lamb_entropy * entropy
        return total

    @torch.no_grad()
    def jacobian(
        self, x: torch.Tensor, first: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Network output and its Jacobian with respect to all parameters, analytically.

        Every layer's output is linear in its own parameters given its inputs
        (``h' = B(h) C^T + silu(h) W^T + b``), so the Jacobian of the network output with
        respect to layer ``l``'s parameters is the outer product of the sensitivity
        ``M_l = d out / d h_{l+1}`` (the product of the later layers' input Jacobians
        ``d h_{m+1} / d h_m = sum_k C_oik B'_k(h_i) + W_oi silu'(h_i)``, chain rule)
        with the layer's features ``[B(h), silu(h), 1]``. Masked edges get zero columns.
        This is the Jacobian that Gauss-Newton / Levenberg-Marquardt training needs
        (one forward sweep, one backward sweep over the layers, no autograd).

        Arguments:
            x: Inputs ``(n, d_in)``.
            first: Precomputed :meth:`KANLayer.features` of ``x`` for the first layer.

        Returns:
            ``(out, J)``: output ``(n, d_out)`` and Jacobian ``(n, d_out, P)``, the
            columns in the order of ``torch.nn.utils.parameters_to_vector(
            self.parameters())`` (per layer: ``coef``, ``base_weight``, ``bias``).
        """
        feats = []  # per layer: basis, silu, input Jacobian factors (or None)
        h = x
        for i, layer in enumerate(self.layers):
            if i == 0:
                basis, base = layer.features(h) if first is None else first
                dbasis = dbase = None
            else:
                basis, dbasis = b_spline_basis_and_derivative(h, layer.knots, layer.spline_order)
                base, dbase = torch.nn.functional.silu(h), _silu_derivative(h)
            feats.append((basis, base, dbasis, dbase))
            coef = layer.coef * layer.mask.unsqueeze(-1)
            wb = layer.base_weight * layer.mask
            h = basis.flatten(1) @ coef.flatten(1).T + base @ wb.T + layer.bias
        out = h
        n, a = out.shape
        sens = torch.eye(a, dtype=out.dtype, device=out.device).expand(n, a, a)
        blocks: list[torch.Tensor] = []
        for layer, (basis, base, dbasis, dbase) in zip(
            reversed(self.layers), reversed(feats), strict=True
        ):
            mask = layer.mask
            j_coef = (
                sens[:, :, :, None, None]
                * basis[:, None, None, :, :]
                * mask[None, None, :, :, None]
            )
            j_base = sens[:, :, :, None] * base[:, None, None, :] * mask
            blocks.append(
                torch.cat([j_coef.reshape(n, a, -1), j_base.reshape(n, a, -1), sens], dim=2)
            )
            if dbasis is not None:
                coef = layer.coef * mask.unsqueeze(-1)
                d_in = torch.einsum("nik,oik->noi", dbasis, coef) + dbase[:, None, :] * (
                    layer.base_weight * mask
                )
                sens = torch.bmm(sens, d_in)
        return out, torch.cat(blocks[::-1], dim=2)

    def n_active_edges(self) -> int:
        """Number of unmasked edges."""
        return int(sum(int(layer.mask.sum().item()) for layer in self.layers))
