"""Equation sets for the symbolic-regression benchmark: AI Feynman (100) and our field (15).

**feynman**: the 100 equations of the AI Feynman database with their published variable
names and sampling ranges (Udrescu & Tegmark 2020, table ``FeynmanEquations.csv`` of the
AI Feynman release, as used by SRBench). The formulas are transcribed in the syntax of
ariasim's whitelist parser (``arcsin`` -> ``asin``); variables are the table's own
columns (where its ``# variables`` count disagrees with the listed columns, as for
I.18.14, II.37.1 and III.10.19, the listed columns are used).

Every variable and target carries a physical unit (ariasim's unit syntax) chosen so that
the true formula is dimensionally consistent; the constants of nature appear as inputs,
as in the dataset, with their SI units (``epsilon`` C^2/(N m^2), ``kb`` J/K, ``h`` J s,
``G`` N m^2/kg^2, ``c`` m/s). Where the formula forces a unit the formula is followed:

- ``mu_drift`` (I.43.16) and ``mob`` (I.43.31) are mobilities v/F in s/kg (the formula
  ``v = mu_drift q Volt / d`` is velocity only with that unit, not m^2/(V s));
- ``H`` in II.36.38 is in tesla (the formula adds ``mom H/(kb T)`` to a dimensionless
  term, so H is mu_0 times the field strength), ``M`` there is a magnetisation (A/m);
- angles, counts ``n``, ratios ``chi``, ``Gamma``, ``alpha`` (polarisability per
  particle times density in II.11.27/28) are dimensionless.

**field**: 15 textbook formulas of this project's field (detector resolutions, multiple
scattering, attenuation, diffusion, phase functions, resonance shapes, spectra,
kinematics), with units and realistic ranges. References: PDG Review of Particle
Physics (2024) sections 34 (passage of particles through matter, Highland formula,
Cherenkov angle), 35 (detectors: tracker and calorimeter resolution) and 49 (kinematics:
Breit-Wigner, invariant mass); Henyey & Greenstein, ApJ 93 (1941) 70.

Sampling: each variable uniform on its range; rows where the true formula is not finite
are rejected and drawn again (:func:`sample`). With the published ranges no formula of
either set is undefined on a row of positive probability (20 000 uniform rows per
equation were all finite); the rejection is a guard, e.g. for ``(omega - omega_0)``
exactly zero in III.9.52, and keeps the published ranges valid for any range edit.

Example:
    >>> len(FEYNMAN), len(FIELD)
    (100, 15)
    >>> eq = SETS["feynman"][5]
    >>> eq.name, eq.formula, eq.unit
    ('I.10.7', 'm_0/sqrt(1-v**2/c**2)', 'kg')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FEYNMAN", "FIELD", "SETS", "Equation", "sample", "truth_formula"]


@dataclass(frozen=True)
class Equation:
    """One benchmark equation.

    Arguments:
        name: Identifier (AI Feynman's file name for the Feynman set).
        formula: Formula text in ariasim's whitelist-parser syntax.
        output: Name of the target.
        unit: Unit of the target (ariasim unit syntax, "" = dimensionless).
        variables: ``(name, low, high, unit)`` per input, in column order.

    Example:
        >>> eq = Equation("x", "a*b", "y", "m^2", (("a", 1, 2, "m"), ("b", 1, 2, "m")))
        >>> eq.names, eq.units
        (['a', 'b'], ['m', 'm'])
    """

    name: str
    formula: str
    output: str
    unit: str
    variables: tuple[tuple[str, float, float, str], ...]

    @property
    def names(self) -> list[str]:
        """Input names in column order."""
        return [v[0] for v in self.variables]

    @property
    def units(self) -> list[str]:
        """Input units in column order."""
        return [v[3] for v in self.variables]


def _e(name: str, formula: str, output: str, unit: str, *variables: tuple) -> Equation:
    return Equation(name, formula, output, unit, tuple(variables))


# frequently used units
EPS = "C^2/(N*m^2)"  # vacuum permittivity
KB = "J/K"  # Boltzmann constant
H = "J*s"  # Planck constant
G_N = "N*m^2/kg^2"  # Newton's constant
VEL = "m/s"
MOM = "A*m^2"  # magnetic moment
PD = "C*m"  # electric dipole moment
EF = "N/C"  # electric field
B = "Tesla"
NDENS = "1/m^3"  # number density

# fmt: off
FEYNMAN: tuple[Equation, ...] = (
    _e("I.6.2a", "exp(-theta**2/2)/sqrt(2*pi)", "f", "", ("theta", 1, 3, "")),
    _e("I.6.2", "exp(-(theta/sigma)**2/2)/(sqrt(2*pi)*sigma)", "f", "",
       ("sigma", 1, 3, ""), ("theta", 1, 3, "")),
    _e("I.6.2b", "exp(-((theta-theta1)/sigma)**2/2)/(sqrt(2*pi)*sigma)", "f", "",
       ("sigma", 1, 3, ""), ("theta", 1, 3, ""), ("theta1", 1, 3, "")),
    _e("I.8.14", "sqrt((x2-x1)**2+(y2-y1)**2)", "d", "m",
       ("x1", 1, 5, "m"), ("x2", 1, 5, "m"), ("y1", 1, 5, "m"), ("y2", 1, 5, "m")),
    _e("I.9.18", "G*m1*m2/((x2-x1)**2+(y2-y1)**2+(z2-z1)**2)", "F", "N",
       ("m1", 1, 2, "kg"), ("m2", 1, 2, "kg"), ("G", 1, 2, G_N), ("x1", 3, 4, "m"),
       ("x2", 1, 2, "m"), ("y1", 3, 4, "m"), ("y2", 1, 2, "m"), ("z1", 3, 4, "m"),
       ("z2", 1, 2, "m")),
    _e("I.10.7", "m_0/sqrt(1-v**2/c**2)", "m", "kg",
       ("m_0", 1, 5, "kg"), ("v", 1, 2, VEL), ("c", 3, 10, VEL)),
    _e("I.11.19", "x1*y1+x2*y2+x3*y3", "A", "J",
       ("x1", 1, 5, "m"), ("x2", 1, 5, "m"), ("x3", 1, 5, "m"),
       ("y1", 1, 5, "N"), ("y2", 1, 5, "N"), ("y3", 1, 5, "N")),
    _e("I.12.1", "mu*Nn", "F", "N", ("mu", 1, 5, ""), ("Nn", 1, 5, "N")),
    _e("I.12.2", "q1*q2*r/(4*pi*epsilon*r**3)", "F", "N",
       ("q1", 1, 5, "C"), ("q2", 1, 5, "C"), ("epsilon", 1, 5, EPS), ("r", 1, 5, "m")),
    _e("I.12.4", "q1*r/(4*pi*epsilon*r**3)", "Ef", EF,
       ("q1", 1, 5, "C"), ("epsilon", 1, 5, EPS), ("r", 1, 5, "m")),
    _e("I.12.5", "q2*Ef", "F", "N", ("q2", 1, 5, "C"), ("Ef", 1, 5, EF)),
    _e("I.12.11", "q*(Ef+B*v*sin(theta))", "F", "N",
       ("q", 1, 5, "C"), ("Ef", 1, 5, EF), ("B", 1, 5, B), ("v", 1, 5, VEL),
       ("theta", 1, 5, "")),
    _e("I.13.4", "1/2*m*(v**2+u**2+w**2)", "K", "J",
       ("m", 1, 5, "kg"), ("v", 1, 5, VEL), ("u", 1, 5, VEL), ("w", 1, 5, VEL)),
    _e("I.13.12", "G*m1*m2*(1/r2-1/r1)", "U", "J",
       ("m1", 1, 5, "kg"), ("m2", 1, 5, "kg"), ("r1", 1, 5, "m"), ("r2", 1, 5, "m"),
       ("G", 1, 5, G_N)),
    _e("I.14.3", "m*g*z", "U", "J", ("m", 1, 5, "kg"), ("g", 1, 5, "m/s^2"), ("z", 1, 5, "m")),
    _e("I.14.4", "1/2*k_spring*x**2", "U", "J", ("k_spring", 1, 5, "N/m"), ("x", 1, 5, "m")),
    _e("I.15.3x", "(x-u*t)/sqrt(1-u**2/c**2)", "x1", "m",
       ("x", 5, 10, "m"), ("u", 1, 2, VEL), ("c", 3, 20, VEL), ("t", 1, 2, "s")),
    _e("I.15.3t", "(t-u*x/c**2)/sqrt(1-u**2/c**2)", "t1", "s",
       ("x", 1, 5, "m"), ("c", 3, 10, VEL), ("u", 1, 2, VEL), ("t", 1, 5, "s")),
    _e("I.15.1", "m_0*v/sqrt(1-v**2/c**2)", "p", "kg*m/s",
       ("m_0", 1, 5, "kg"), ("v", 1, 2, VEL), ("c", 3, 10, VEL)),
    _e("I.16.6", "(u+v)/(1+u*v/c**2)", "v1", VEL,
       ("c", 1, 5, VEL), ("v", 1, 5, VEL), ("u", 1, 5, VEL)),
    _e("I.18.4", "(m1*r1+m2*r2)/(m1+m2)", "r", "m",
       ("m1", 1, 5, "kg"), ("m2", 1, 5, "kg"), ("r1", 1, 5, "m"), ("r2", 1, 5, "m")),
    _e("I.18.12", "r*F*sin(theta)", "tau", "N*m",
       ("r", 1, 5, "m"), ("F", 1, 5, "N"), ("theta", 0, 5, "")),
    _e("I.18.14", "m*r*v*sin(theta)", "L", "kg*m^2/s",
       ("m", 1, 5, "kg"), ("r", 1, 5, "m"), ("v", 1, 5, VEL), ("theta", 1, 5, "")),
    _e("I.24.6", "1/2*m*(omega**2+omega_0**2)*1/2*x**2", "E_n", "J",
       ("m", 1, 3, "kg"), ("omega", 1, 3, "Hz"), ("omega_0", 1, 3, "Hz"), ("x", 1, 3, "m")),
    _e("I.25.13", "q/C", "Volt", "V", ("q", 1, 5, "C"), ("C", 1, 5, "C/V")),
    _e("I.26.2", "asin(n*sin(theta2))", "theta1", "", ("n", 0, 1, ""), ("theta2", 1, 5, "")),
    _e("I.27.6", "1/(1/d1+n/d2)", "foc", "m",
       ("d1", 1, 5, "m"), ("d2", 1, 5, "m"), ("n", 1, 5, "")),
    _e("I.29.4", "omega/c", "k", "1/m", ("omega", 1, 10, "Hz"), ("c", 1, 10, VEL)),
    _e("I.29.16", "sqrt(x1**2+x2**2-2*x1*x2*cos(theta1-theta2))", "x", "m",
       ("x1", 1, 5, "m"), ("x2", 1, 5, "m"), ("theta1", 1, 5, ""), ("theta2", 1, 5, "")),
    _e("I.30.3", "Int_0*sin(n*theta/2)**2/sin(theta/2)**2", "Int", "W/m^2",
       ("Int_0", 1, 5, "W/m^2"), ("theta", 1, 5, ""), ("n", 1, 5, "")),
    _e("I.30.5", "asin(lambd/(n*d))", "theta", "",
       ("lambd", 1, 2, "m"), ("d", 2, 5, "m"), ("n", 1, 5, "")),
    _e("I.32.5", "q**2*a**2/(6*pi*epsilon*c**3)", "Pwr", "W",
       ("q", 1, 5, "C"), ("a", 1, 5, "m/s^2"), ("epsilon", 1, 5, EPS), ("c", 1, 5, VEL)),
    _e("I.32.17", "(1/2*epsilon*c*Ef**2)*(8*pi*r**2/3)*(omega**4/(omega**2-omega_0**2)**2)",
       "Pwr", "W",
       ("epsilon", 1, 2, EPS), ("c", 1, 2, VEL), ("Ef", 1, 2, EF), ("r", 1, 2, "m"),
       ("omega", 1, 2, "Hz"), ("omega_0", 3, 5, "Hz")),
    _e("I.34.8", "q*v*B/p", "omega", "Hz",
       ("q", 1, 5, "C"), ("v", 1, 5, VEL), ("B", 1, 5, B), ("p", 1, 5, "kg*m/s")),
    _e("I.34.1", "omega_0/(1-v/c)", "omega", "Hz",
       ("c", 3, 10, VEL), ("v", 1, 2, VEL), ("omega_0", 1, 5, "Hz")),
    _e("I.34.14", "(1+v/c)/sqrt(1-v**2/c**2)*omega_0", "omega", "Hz",
       ("c", 3, 10, VEL), ("v", 1, 2, VEL), ("omega_0", 1, 5, "Hz")),
    _e("I.34.27", "(h/(2*pi))*omega", "E_n", "J", ("omega", 1, 5, "Hz"), ("h", 1, 5, H)),
    _e("I.37.4", "I1+I2+2*sqrt(I1*I2)*cos(delta)", "Int", "W/m^2",
       ("I1", 1, 5, "W/m^2"), ("I2", 1, 5, "W/m^2"), ("delta", 1, 5, "")),
    _e("I.38.12", "4*pi*epsilon*(h/(2*pi))**2/(m*q**2)", "r", "m",
       ("m", 1, 5, "kg"), ("q", 1, 5, "C"), ("h", 1, 5, H), ("epsilon", 1, 5, EPS)),
    _e("I.39.1", "3/2*pr*V", "E_n", "J", ("pr", 1, 5, "Pa"), ("V", 1, 5, "m^3")),
    _e("I.39.11", "1/(Gamma-1)*pr*V", "E_n", "J",
       ("Gamma", 2, 5, ""), ("pr", 1, 5, "Pa"), ("V", 1, 5, "m^3")),
    _e("I.39.22", "n*kb*T/V", "pr", "Pa",
       ("n", 1, 5, ""), ("T", 1, 5, "K"), ("V", 1, 5, "m^3"), ("kb", 1, 5, KB)),
    _e("I.40.1", "n_0*exp(-m*g*x/(kb*T))", "n", NDENS,
       ("n_0", 1, 5, NDENS), ("m", 1, 5, "kg"), ("x", 1, 5, "m"), ("T", 1, 5, "K"),
       ("g", 1, 5, "m/s^2"), ("kb", 1, 5, KB)),
    _e("I.41.16", "h/(2*pi)*omega**3/(pi**2*c**2*(exp((h/(2*pi))*omega/(kb*T))-1))",
       "L_rad", "J/m^2",
       ("omega", 1, 5, "Hz"), ("T", 1, 5, "K"), ("h", 1, 5, H), ("kb", 1, 5, KB),
       ("c", 1, 5, VEL)),
    _e("I.43.16", "mu_drift*q*Volt/d", "v", VEL,
       ("mu_drift", 1, 5, "s/kg"), ("q", 1, 5, "C"), ("Volt", 1, 5, "V"), ("d", 1, 5, "m")),
    _e("I.43.31", "mob*kb*T", "D", "m^2/s",
       ("mob", 1, 5, "s/kg"), ("T", 1, 5, "K"), ("kb", 1, 5, KB)),
    _e("I.43.43", "1/(Gamma-1)*kb*v/A", "kappa", "W/(m*K)",
       ("Gamma", 2, 5, ""), ("kb", 1, 5, KB), ("A", 1, 5, "m^2"), ("v", 1, 5, VEL)),
    _e("I.44.4", "n*kb*T*log(V2/V1)", "E_n", "J",
       ("n", 1, 5, ""), ("kb", 1, 5, KB), ("T", 1, 5, "K"), ("V1", 1, 5, "m^3"),
       ("V2", 1, 5, "m^3")),
    _e("I.47.23", "sqrt(Gamma*pr/rho)", "c", VEL,
       ("Gamma", 1, 5, ""), ("pr", 1, 5, "Pa"), ("rho", 1, 5, "kg/m^3")),
    _e("I.48.2", "m*c**2/sqrt(1-v**2/c**2)", "E_n", "J",
       ("m", 1, 5, "kg"), ("v", 1, 2, VEL), ("c", 3, 10, VEL)),
    _e("I.50.26", "x1*(cos(omega*t)+alpha*cos(omega*t)**2)", "x", "m",
       ("x1", 1, 3, "m"), ("omega", 1, 3, "Hz"), ("t", 1, 3, "s"), ("alpha", 1, 3, "")),
    _e("II.2.42", "kappa*(T2-T1)*A/d", "Pwr", "W",
       ("kappa", 1, 5, "W/(m*K)"), ("T1", 1, 5, "K"), ("T2", 1, 5, "K"), ("A", 1, 5, "m^2"),
       ("d", 1, 5, "m")),
    _e("II.3.24", "Pwr/(4*pi*r**2)", "flux", "W/m^2", ("Pwr", 1, 5, "W"), ("r", 1, 5, "m")),
    _e("II.4.23", "q/(4*pi*epsilon*r)", "Volt", "V",
       ("q", 1, 5, "C"), ("epsilon", 1, 5, EPS), ("r", 1, 5, "m")),
    _e("II.6.11", "1/(4*pi*epsilon)*p_d*cos(theta)/r**2", "Volt", "V",
       ("epsilon", 1, 3, EPS), ("p_d", 1, 3, PD), ("theta", 1, 3, ""), ("r", 1, 3, "m")),
    _e("II.6.15a", "p_d/(4*pi*epsilon)*3*z/r**5*sqrt(x**2+y**2)", "Ef", EF,
       ("epsilon", 1, 3, EPS), ("p_d", 1, 3, PD), ("r", 1, 3, "m"), ("x", 1, 3, "m"),
       ("y", 1, 3, "m"), ("z", 1, 3, "m")),
    _e("II.6.15b", "p_d/(4*pi*epsilon)*3*cos(theta)*sin(theta)/r**3", "Ef", EF,
       ("epsilon", 1, 3, EPS), ("p_d", 1, 3, PD), ("theta", 1, 3, ""), ("r", 1, 3, "m")),
    _e("II.8.7", "3/5*q**2/(4*pi*epsilon*d)", "E_n", "J",
       ("q", 1, 5, "C"), ("epsilon", 1, 5, EPS), ("d", 1, 5, "m")),
    _e("II.8.31", "epsilon*Ef**2/2", "E_den", "J/m^3", ("epsilon", 1, 5, EPS), ("Ef", 1, 5, EF)),
    _e("II.10.9", "sigma_den/epsilon*1/(1+chi)", "Ef", EF,
       ("sigma_den", 1, 5, "C/m^2"), ("epsilon", 1, 5, EPS), ("chi", 1, 5, "")),
    _e("II.11.3", "q*Ef/(m*(omega_0**2-omega**2))", "x", "m",
       ("q", 1, 3, "C"), ("Ef", 1, 3, EF), ("m", 1, 3, "kg"), ("omega_0", 3, 5, "Hz"),
       ("omega", 1, 2, "Hz")),
    _e("II.11.17", "n_0*(1+p_d*Ef*cos(theta)/(kb*T))", "n", NDENS,
       ("n_0", 1, 3, NDENS), ("kb", 1, 3, KB), ("T", 1, 3, "K"), ("theta", 1, 3, ""),
       ("p_d", 1, 3, PD), ("Ef", 1, 3, EF)),
    _e("II.11.20", "n_rho*p_d**2*Ef/(3*kb*T)", "Pol", "C/m^2",
       ("n_rho", 1, 5, NDENS), ("p_d", 1, 5, PD), ("Ef", 1, 5, EF), ("kb", 1, 5, KB),
       ("T", 1, 5, "K")),
    _e("II.11.27", "n*alpha/(1-(n*alpha/3))*epsilon*Ef", "Pol", "C/m^2",
       ("n", 0, 1, ""), ("alpha", 0, 1, ""), ("epsilon", 1, 2, EPS), ("Ef", 1, 2, EF)),
    _e("II.11.28", "1+n*alpha/(1-(n*alpha/3))", "theta", "", ("n", 0, 1, ""), ("alpha", 0, 1, "")),
    _e("II.13.17", "1/(4*pi*epsilon*c**2)*2*I/r", "B", B,
       ("epsilon", 1, 5, EPS), ("c", 1, 5, VEL), ("I", 1, 5, "A"), ("r", 1, 5, "m")),
    _e("II.13.23", "rho_c_0/sqrt(1-v**2/c**2)", "rho_c", "C/m^3",
       ("rho_c_0", 1, 5, "C/m^3"), ("v", 1, 2, VEL), ("c", 3, 10, VEL)),
    _e("II.13.34", "rho_c_0*v/sqrt(1-v**2/c**2)", "j", "A/m^2",
       ("rho_c_0", 1, 5, "C/m^3"), ("v", 1, 2, VEL), ("c", 3, 10, VEL)),
    _e("II.15.4", "-mom*B*cos(theta)", "E_n", "J",
       ("mom", 1, 5, MOM), ("B", 1, 5, B), ("theta", 1, 5, "")),
    _e("II.15.5", "-p_d*Ef*cos(theta)", "E_n", "J",
       ("p_d", 1, 5, PD), ("Ef", 1, 5, EF), ("theta", 1, 5, "")),
    _e("II.21.32", "q/(4*pi*epsilon*r*(1-v/c))", "Volt", "V",
       ("q", 1, 5, "C"), ("epsilon", 1, 5, EPS), ("r", 1, 5, "m"), ("v", 1, 2, VEL),
       ("c", 3, 10, VEL)),
    _e("II.24.17", "sqrt(omega**2/c**2-pi**2/d**2)", "k", "1/m",
       ("omega", 4, 6, "Hz"), ("c", 1, 2, VEL), ("d", 2, 4, "m")),
    _e("II.27.16", "epsilon*c*Ef**2", "flux", "W/m^2",
       ("epsilon", 1, 5, EPS), ("c", 1, 5, VEL), ("Ef", 1, 5, EF)),
    _e("II.27.18", "epsilon*Ef**2", "E_den", "J/m^3", ("epsilon", 1, 5, EPS), ("Ef", 1, 5, EF)),
    _e("II.34.2a", "q*v/(2*pi*r)", "I", "A", ("q", 1, 5, "C"), ("v", 1, 5, VEL), ("r", 1, 5, "m")),
    _e("II.34.2", "q*v*r/2", "mom", MOM, ("q", 1, 5, "C"), ("v", 1, 5, VEL), ("r", 1, 5, "m")),
    _e("II.34.11", "g_*q*B/(2*m)", "omega", "Hz",
       ("g_", 1, 5, ""), ("q", 1, 5, "C"), ("B", 1, 5, B), ("m", 1, 5, "kg")),
    _e("II.34.29a", "q*h/(4*pi*m)", "mom", MOM,
       ("q", 1, 5, "C"), ("h", 1, 5, H), ("m", 1, 5, "kg")),
    _e("II.34.29b", "g_*mom*B*Jz/(h/(2*pi))", "E_n", "J",
       ("g_", 1, 5, ""), ("h", 1, 5, H), ("Jz", 1, 5, H), ("mom", 1, 5, MOM), ("B", 1, 5, B)),
    _e("II.35.18", "n_0/(exp(mom*B/(kb*T))+exp(-mom*B/(kb*T)))", "n", NDENS,
       ("n_0", 1, 3, NDENS), ("kb", 1, 3, KB), ("T", 1, 3, "K"), ("mom", 1, 3, MOM),
       ("B", 1, 3, B)),
    _e("II.35.21", "n_rho*mom*tanh(mom*B/(kb*T))", "M", "A/m",
       ("n_rho", 1, 5, NDENS), ("mom", 1, 5, MOM), ("B", 1, 5, B), ("kb", 1, 5, KB),
       ("T", 1, 5, "K")),
    _e("II.36.38", "mom*H/(kb*T)+(mom*alpha)/(epsilon*c**2*kb*T)*M", "f", "",
       ("mom", 1, 3, MOM), ("H", 1, 3, B), ("kb", 1, 3, KB), ("T", 1, 3, "K"),
       ("alpha", 1, 3, ""), ("epsilon", 1, 3, EPS), ("c", 1, 3, VEL), ("M", 1, 3, "A/m")),
    _e("II.37.1", "mom*(1+chi)*B", "E_n", "J",
       ("mom", 1, 5, MOM), ("B", 1, 5, B), ("chi", 1, 5, "")),
    _e("II.38.3", "Y*A*x/d", "F", "N",
       ("Y", 1, 5, "Pa"), ("A", 1, 5, "m^2"), ("d", 1, 5, "m"), ("x", 1, 5, "m")),
    _e("II.38.14", "Y/(2*(1+sigma))", "mu_S", "Pa", ("Y", 1, 5, "Pa"), ("sigma", 1, 5, "")),
    _e("III.4.32", "1/(exp((h/(2*pi))*omega/(kb*T))-1)", "n", "",
       ("h", 1, 5, H), ("omega", 1, 5, "Hz"), ("kb", 1, 5, KB), ("T", 1, 5, "K")),
    _e("III.4.33", "(h/(2*pi))*omega/(exp((h/(2*pi))*omega/(kb*T))-1)", "E_n", "J",
       ("h", 1, 5, H), ("omega", 1, 5, "Hz"), ("kb", 1, 5, KB), ("T", 1, 5, "K")),
    _e("III.7.38", "2*mom*B/(h/(2*pi))", "omega", "Hz",
       ("mom", 1, 5, MOM), ("B", 1, 5, B), ("h", 1, 5, H)),
    _e("III.8.54", "sin(E_n*t/(h/(2*pi)))**2", "prob", "",
       ("E_n", 1, 2, "J"), ("t", 1, 2, "s"), ("h", 1, 4, H)),
    _e("III.9.52",
       "(p_d*Ef*t/(h/(2*pi)))*sin((omega-omega_0)*t/2)**2/((omega-omega_0)*t/2)**2",
       "prob", "",
       ("p_d", 1, 3, PD), ("Ef", 1, 3, EF), ("t", 1, 3, "s"), ("h", 1, 3, H),
       ("omega", 1, 5, "Hz"), ("omega_0", 1, 5, "Hz")),
    _e("III.10.19", "mom*sqrt(Bx**2+By**2+Bz**2)", "E_n", "J",
       ("mom", 1, 5, MOM), ("Bx", 1, 5, B), ("By", 1, 5, B), ("Bz", 1, 5, B)),
    _e("III.12.43", "n*(h/(2*pi))", "L", H, ("n", 1, 5, ""), ("h", 1, 5, H)),
    _e("III.13.18", "2*E_n*d**2*k/(h/(2*pi))", "v", VEL,
       ("E_n", 1, 5, "J"), ("d", 1, 5, "m"), ("k", 1, 5, "1/m"), ("h", 1, 5, H)),
    _e("III.14.14", "I_0*(exp(q*Volt/(kb*T))-1)", "I", "A",
       ("I_0", 1, 5, "A"), ("q", 1, 2, "C"), ("Volt", 1, 2, "V"), ("kb", 1, 2, KB),
       ("T", 1, 2, "K")),
    _e("III.15.12", "2*U*(1-cos(k*d))", "E_n", "J",
       ("U", 1, 5, "J"), ("k", 1, 5, "1/m"), ("d", 1, 5, "m")),
    _e("III.15.14", "(h/(2*pi))**2/(2*E_n*d**2)", "m", "kg",
       ("h", 1, 5, H), ("E_n", 1, 5, "J"), ("d", 1, 5, "m")),
    _e("III.15.27", "2*pi*alpha/(n*d)", "k", "1/m",
       ("alpha", 1, 5, ""), ("n", 1, 5, ""), ("d", 1, 5, "m")),
    _e("III.17.37", "beta*(1+alpha*cos(theta))", "f", "",
       ("beta", 1, 5, ""), ("alpha", 1, 5, ""), ("theta", 1, 5, "")),
    _e("III.19.51", "-m*q**4/(2*(4*pi*epsilon)**2*(h/(2*pi))**2)*(1/n**2)", "E_n", "J",
       ("m", 1, 5, "kg"), ("q", 1, 5, "C"), ("h", 1, 5, H), ("n", 1, 5, ""),
       ("epsilon", 1, 5, EPS)),
    _e("III.21.20", "-rho_c_0*q*A_vec/m", "j", "A/m^2",
       ("rho_c_0", 1, 5, "C/m^3"), ("q", 1, 5, "C"), ("A_vec", 1, 5, "Tesla*m"),
       ("m", 1, 5, "kg")),
)

FIELD: tuple[Equation, ...] = (
    # relative pT resolution of a tracker: constant (multiple scattering) + curvature term
    _e("tracker_resolution", "sqrt(a**2+(b*pt)**2)", "sigma_rel", "",
       ("a", 0.005, 0.02, ""), ("b", 1e-4, 5e-4, "1/GeV"), ("pt", 10, 500, "GeV")),
    # relative energy resolution of a calorimeter: stochastic, noise and constant terms
    _e("calorimeter_resolution", "sqrt(a**2/En+b**2/En**2+c**2)", "sigma_rel", "",
       ("a", 0.05, 0.5, "GeV^(1/2)"), ("b", 0.1, 0.5, "GeV"), ("c", 0.005, 0.05, ""),
       ("En", 1, 200, "GeV")),
    # Highland multiple-scattering angle without the logarithm (13.6 MeV scale)
    _e("highland", "13.6/(beta*p)*sqrt(x/X0)", "theta0", "rad",
       ("beta", 0.5, 1, ""), ("p", 100, 5000, "MeV"), ("x", 0.001, 0.1, "m"),
       ("X0", 0.01, 0.5, "m")),
    _e("beer_lambert", "I0*exp(-x/lam)", "Int", "W/m^2",
       ("I0", 1, 10, "W/m^2"), ("x", 0.1, 50, "m"), ("lam", 5, 50, "m")),
    # 1D diffusion kernel (Green's function of the diffusion equation)
    _e("diffusion", "exp(-x**2/(4*D*t))/sqrt(4*pi*D*t)", "p", "1/m",
       ("x", -3, 3, "m"), ("D", 0.1, 1, "m^2/s"), ("t", 1, 5, "s")),
    _e("henyey_greenstein", "(1-g**2)/(4*pi*(1+g**2-2*g*cos(theta))**(3/2))", "p", "1/sr",
       ("g", 0.1, 0.9, ""), ("theta", 0, 3.14159, "rad")),
    _e("rayleigh", "3/(16*pi)*(1+cos(theta)**2)", "p", "1/sr", ("theta", 0, 3.14159, "rad")),
    _e("breit_wigner", "(Gamma/(2*pi))/((En-M)**2+Gamma**2/4)", "p", "1/GeV",
       ("En", 70, 110, "GeV"), ("M", 80, 100, "GeV"), ("Gamma", 1, 5, "GeV")),
    # relativistic Breit-Wigner, normalised to 1 at the pole
    _e("relativistic_breit_wigner", "M**2*Gamma**2/((En**2-M**2)**2+M**2*Gamma**2)", "f", "",
       ("En", 70, 110, "GeV"), ("M", 80, 100, "GeV"), ("Gamma", 1, 5, "GeV")),
    _e("power_law_cutoff", "N0*(En/E0)**(-gam)*exp(-En/Ec)", "flux", "1/(GeV*m^2*s)",
       ("N0", 1, 10, "1/(GeV*m^2*s)"), ("En", 1, 100, "GeV"), ("E0", 1, 10, "GeV"),
       ("gam", 2, 3, ""), ("Ec", 50, 500, "GeV")),
    _e("efficiency_turn_on", "eps/(1+exp(-(pt-p0)/w))", "eff", "",
       ("eps", 0.8, 1, ""), ("pt", 0, 100, "GeV"), ("p0", 20, 40, "GeV"), ("w", 2, 10, "GeV")),
    _e("invariant_mass", "sqrt(2*E1*E2*(1-cos(theta)))", "mass", "GeV",
       ("E1", 1, 100, "GeV"), ("E2", 1, 100, "GeV"), ("theta", 0.1, 3.14159, "rad")),
    _e("kinetic_energy", "sqrt(p**2*c**2+m**2*c**4)-m*c**2", "T_kin", "J",
       ("p", 0.1, 5, "kg*m/s"), ("m", 0.1, 5, "kg"), ("c", 1, 3, VEL)),
    _e("cherenkov_angle", "acos(1/(n*beta))", "theta_c", "rad",
       ("n", 1.3, 1.8, ""), ("beta", 0.8, 1, "")),
    # photon fluence of an isotropic source in an absorbing medium
    _e("fluence_absorption", "N/(4*pi*r**2)*exp(-r/la)", "fluence", "1/m^2",
       ("N", 1e3, 1e5, "photons"), ("r", 5, 100, "m"), ("la", 20, 150, "m")),
)
# fmt: on

SETS: dict[str, tuple[Equation, ...]] = {"feynman": FEYNMAN, "field": FIELD}


def truth_formula(eq: Equation):
    """The true formula as an :class:`ariasim.surrogates.Formula` with units and ranges."""
    from ariasim.surrogates import Formula
    from ariasim.surrogates.formula import Variable

    variables = [Variable(n, unit=u, low=lo, high=hi) for n, lo, hi, u in eq.variables]
    return Formula(eq.formula, variables, output=Variable(eq.output, unit=eq.unit))


def sample(
    eq: Equation, n: int, rng: np.random.Generator, *, max_rounds: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows uniform on the equation's ranges where the true formula is finite.

    Rows whose target is NaN or infinite are rejected and drawn again (the distribution
    is then uniform on the part of the box where the formula is defined).

    Returns:
        ``(X, y)``: inputs ``(n, n_variables)`` and the true targets ``(n,)``.

    Raises:
        RuntimeError: if ``max_rounds`` rounds of drawing do not give ``n`` finite rows.
    """
    truth = truth_formula(eq)
    lo = np.array([v[1] for v in eq.variables], dtype=float)
    hi = np.array([v[2] for v in eq.variables], dtype=float)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    have = 0
    for _ in range(max_rounds):
        X = lo + (hi - lo) * rng.random((n, len(lo)))
        with np.errstate(all="ignore"):
            y = np.asarray(truth(X), dtype=float) * np.ones(n)
        ok = np.isfinite(y)
        xs.append(X[ok])
        ys.append(y[ok])
        have += int(ok.sum())
        if have >= n:
            return np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    raise RuntimeError(f"{eq.name}: fewer than {n} finite rows after {max_rounds} rounds")
