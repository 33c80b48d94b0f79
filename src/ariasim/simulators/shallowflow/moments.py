"""Scaled Legendre basis and the coefficient tensors of the shallow-moment equations.

The velocity profile over the normalised depth ``zeta in [0, 1]`` (0 at the bed) is
``u(zeta) = u_m + sum_{j=1..N} alpha_j phi_j(zeta)`` with the scaled (shifted, unnormalised)
Legendre polynomials ``phi_j(zeta) = P_j(1 - 2 zeta)``: ``phi_0 = 1``, ``phi_1 = 1 - 2 zeta``,
``phi_2 = 1 - 6 zeta + 6 zeta^2``; ``int_0^1 phi_i phi_j = delta_ij / (2j + 1)`` and
``phi_j(0) = 1``, so the basal velocity is ``u_b = u_m + sum_j alpha_j``.

Galerkin projection (Kowalski & Torrilhon 2019, eqs. for the moments ``i = 1..N``)::

    d_t(h alpha_i) + d_x(h (2 u_m alpha_i + sum_jk A_ijk alpha_j alpha_k))
        = u_m D_i - sum_jk B_ijk D_j alpha_k - (2i + 1) tau_b - (nu / h) sum_j C_ij alpha_j,

with ``D_j = d_x(h alpha_j)``, ``tau_b`` the basal shear stress over density and

    A_ijk = (2i+1) int phi_i phi_j phi_k,
    B_ijk = (2i+1) int phi_i' (int_0^zeta phi_j) phi_k,
    C_ij  = (2i+1) int phi_i' phi_j'.

References:
    J. Kowalski and M. Torrilhon, "Moment approximations and model cascades for shallow
    flow", Commun. Comput. Phys. 25 (2019) 669-702.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre as npleg

__all__ = ["MomentTensors", "scaled_legendre"]


def scaled_legendre(j: int, zeta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``phi_j(zeta) = P_j(1 - 2 zeta)`` and its derivative in ``zeta``.

    >>> [float(v) for v in scaled_legendre(2, np.array([0.0, 0.5, 1.0]))[0]]
    [1.0, -0.5, 1.0]
    """
    zeta = np.asarray(zeta, dtype=float)
    c = np.zeros(j + 1)
    c[j] = 1.0
    xi = 1.0 - 2.0 * zeta
    return npleg.legval(xi, c), -2.0 * npleg.legval(xi, npleg.legder(c))


@dataclass(frozen=True, eq=False)
class MomentTensors:
    """The tensors ``A`` (N, N, N), ``B`` (N, N, N) and ``C`` (N, N) for ``N`` moments.

    Computed with Gauss-Legendre quadrature that is exact for the polynomial integrands.

    Example:
        >>> t = MomentTensors.build(1)
        >>> float(t.A[0, 0, 0]), float(t.B[0, 0, 0]), float(t.C[0, 0])
        (0.0, 0.0, 12.0)
    """

    n: int
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray

    @classmethod
    def build(cls, n: int) -> MomentTensors:
        """Tensors for ``n >= 0`` moments (empty arrays for ``n = 0``)."""
        nq = 2 * n + 4
        xg, wg = npleg.leggauss(nq)
        zeta, w = 0.5 * (xg + 1.0), 0.5 * wg
        phi = np.zeros((n, nq))
        dphi = np.zeros((n, nq))
        iphi = np.zeros((n, nq))  # int_0^zeta phi_j
        for j in range(1, n + 1):
            phi[j - 1], dphi[j - 1] = scaled_legendre(j, zeta)
            for q in range(nq):
                zq, wq = 0.5 * zeta[q] * (xg + 1.0), 0.5 * zeta[q] * wg
                iphi[j - 1, q] = np.sum(wq * scaled_legendre(j, zq)[0])
        scale = 2.0 * np.arange(1, n + 1) + 1.0
        A = np.einsum("iq,jq,kq,q->ijk", phi, phi, phi, w) * scale[:, None, None]
        B = np.einsum("iq,jq,kq,q->ijk", dphi, iphi, phi, w) * scale[:, None, None]
        C = np.einsum("iq,jq,q->ij", dphi, dphi, w) * scale[:, None]
        clean = [np.where(np.abs(a) < 1e-12, 0.0, a) for a in (A, B, C)]
        return cls(n=n, A=clean[0], B=clean[1], C=clean[2])
