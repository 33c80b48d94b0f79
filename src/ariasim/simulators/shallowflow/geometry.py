"""Bed profiles for the shallow-flow simulator, parametrised by arc length along the bed.

The equations are written in a bed-following coordinate ``s`` (arc length, positive
downslope); the bed enters them only through the local inclination ``phi(s)`` (positive
when the bed descends in the flow direction). Curvature terms (the centrifugal part of the
normal stress) are neglected, as in the basic Savage-Hutter model on a mildly curved bed.

References:
    S. B. Savage and K. Hutter, "The motion of a finite mass of granular material down a
    rough incline", J. Fluid Mech. 199 (1989) 177.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ariasim.errors import ConfigError

__all__ = ["Slope"]

_TABLE = 20001  # points of the fine geometry table of a parametrised chute


@dataclass(frozen=True, eq=False)
class Slope:
    """A bed profile: inclination, horizontal position and height as functions of arc length.

    Build one with :meth:`chute` (an inclined chute joining a run-out zone through a smooth
    bend) or :meth:`from_profile` (a user-given profile ``z(x)``). The geometry is held as a
    fine table in arc length ``s`` and interpolated linearly.

    Attributes:
        s: Arc-length table (m), increasing from 0 to :attr:`length`.
        phi: Inclination at ``s`` (radians, positive where the bed descends downstream).
        x: Horizontal position at ``s`` (m).
        z: Bed height at ``s`` (m).

    Example:
        >>> slope = Slope.chute(35.0, 100.0, 0.0, 50.0, transition=10.0)
        >>> round(slope.length, 6)
        150.0
        >>> [round(float(np.degrees(a)), 3) for a in slope.angle(np.array([10.0, 140.0]))]
        [35.0, 0.0]
    """

    s: np.ndarray
    phi: np.ndarray
    x: np.ndarray
    z: np.ndarray

    @property
    def length(self) -> float:
        """Total arc length of the bed (m)."""
        return float(self.s[-1])

    @classmethod
    def chute(
        cls,
        chute_angle: float,
        chute_length: float,
        runout_angle: float,
        runout_length: float,
        *,
        transition: float = 10.0,
    ) -> Slope:
        """An inclined chute (``chute_angle`` degrees, ``chute_length`` m of arc) joining a
        run-out zone (``runout_angle`` degrees, ``runout_length`` m).

        The angle changes smoothly (half a cosine) over ``transition`` metres of arc centred
        on the end of the chute; ``transition=0`` gives a kink.
        """
        for name, val in (("chute_angle", chute_angle), ("runout_angle", runout_angle)):
            if not np.isfinite(val) or not -89.0 <= val <= 89.0:
                raise ConfigError(
                    f"must be an angle in degrees in [-89, 89], got {val}", parameter=name
                )
        for name, val in (("chute_length", chute_length), ("runout_length", runout_length)):
            if not np.isfinite(val) or val <= 0:
                raise ConfigError(f"must be positive, got {val}", parameter=name)
        if not np.isfinite(transition) or transition < 0:
            raise ConfigError(f"must be >= 0, got {transition}", parameter="transition")
        if transition / 2 > min(chute_length, runout_length):
            raise ConfigError(
                f"half the bend ({transition / 2}) must fit in the chute and run-out lengths",
                parameter="transition",
            )
        p1, p2 = np.radians(chute_angle), np.radians(runout_angle)
        total = chute_length + runout_length
        s = np.linspace(0.0, total, _TABLE)
        if transition > 0:
            w = np.clip((s - (chute_length - transition / 2)) / transition, 0.0, 1.0)
            phi = p1 + (p2 - p1) * 0.5 * (1.0 - np.cos(np.pi * w))
        else:
            phi = np.where(s <= chute_length, p1, p2)
        return cls._integrate(s, phi)

    @classmethod
    def from_profile(cls, x: np.ndarray, z: np.ndarray) -> Slope:
        """A bed given by points ``(x, z)`` (m), ``x`` strictly increasing, flow towards +x.

        Arc length follows the polygon through the points; the inclination at a point is
        ``-atan(dz/dx)`` from a centred difference.
        """
        x = np.asarray(x, dtype=float)
        z = np.asarray(z, dtype=float)
        if x.ndim != 1 or z.shape != x.shape or x.size < 2:
            raise ConfigError(
                "x and z must be 1-D arrays of the same length >= 2", parameter="profile"
            )
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(z))):
            raise ConfigError("x and z must be finite", parameter="profile")
        if np.any(np.diff(x) <= 0):
            raise ConfigError("x must be strictly increasing", parameter="profile")
        s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(z)))])
        phi = -np.arctan(np.gradient(z, x))
        if np.any(np.abs(phi) > np.radians(89.0)):
            raise ConfigError("the profile is steeper than 89 degrees", parameter="profile")
        return cls(s=s, phi=phi, x=x - x[0], z=z)

    @classmethod
    def _integrate(cls, s: np.ndarray, phi: np.ndarray) -> Slope:
        ds = np.diff(s)
        cm, sm = np.cos(0.5 * (phi[1:] + phi[:-1])), np.sin(0.5 * (phi[1:] + phi[:-1]))
        x = np.concatenate([[0.0], np.cumsum(cm * ds)])
        z = np.concatenate([[0.0], -np.cumsum(sm * ds)])
        return cls(s=s, phi=phi, x=x, z=z - z[-1])

    def angle(self, s: np.ndarray) -> np.ndarray:
        """Inclination (radians) at arc lengths ``s``."""
        return np.interp(s, self.s, self.phi)

    def position(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Horizontal position and bed height ``(x, z)`` (m) at arc lengths ``s``."""
        return np.interp(s, self.s, self.x), np.interp(s, self.s, self.z)

    def arc_length_at_x(self, x: np.ndarray) -> np.ndarray:
        """Arc length at horizontal positions ``x`` (the profile is single-valued in x)."""
        return np.interp(x, self.x, self.s)
