"""Symbolic regression as a scikit-learn estimator, on Operon (pyoperon).

Raw pyoperon searches one objective by default, does not optimise constants by default,
evaluates in float32 and prints 3 decimals, and its default model selection can pick an
approximate model over an exact one on its own front (REFERENCE.md section 8). This
estimator wraps it and does what it does not:

1. a multi-objective search (R^2 vs length) with constant optimisation switched on
   (Levenberg-Marquardt, ``optimizer_iterations`` steps per individual);
2. every member of the final Pareto front is simplified with sympy and its constants are
   re-fitted in float64 (:func:`~ariasim.surrogates.formula.refit_constants`), then
   constants that are within noise of a simple number (0, an integer, a ratio of small
   integers) are *snapped* to it when the validation error stays within noise;
3. the final model is chosen by a documented, noise-aware rule (:meth:`_select`): among
   the models whose validation error is within statistical noise of the best one, the
   simplest; with units given, dimensionally consistent models are preferred
   (``units="prefer"``) or required (``units="require"``).

References:
    Burlacu, Kronberger, Kommenda, "Operon C++: an efficient genetic programming framework
    for symbolic regression", GECCO 2020.
    La Cava et al., "Contemporary symbolic regression methods and their relative
    performance" (SRBench), NeurIPS Datasets and Benchmarks 2021.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import sympy as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ariasim.errors import ConfigError, InputError, check_int
from ariasim.surrogates.domain import rewrite_on_domain
from ariasim.surrogates.formula import Formula, Variable, refit_constants
from ariasim.surrogates.parse import FormulaSyntaxError, check_name
from ariasim.surrogates.structure import (
    Reduction,
    StructureResult,
    dimensional_reductions,
    structure_candidates,
)
from ariasim.surrogates.units import is_consistent, parse_unit
from ariasim.utils import as_generator

__all__ = ["DEFAULT_OPERATORS", "SymbolicRegressor", "cancellation_ratio"]

#: Operators searched by default (Operon's names).
DEFAULT_OPERATORS = (
    "add",
    "sub",
    "mul",
    "div",
    "exp",
    "log",
    "sqrt",
    "square",
    "sin",
    "cos",
    "pow",
)
_UNITS_MODES = ("ignore", "prefer", "require")
# fewest rows: half of them (up to 10) are held out for the selection
_MIN_ROWS = 6
# with a wall-clock budget, models with more constants are kept as the search left them
_MAX_REFIT_CONSTANTS = 12


class SymbolicRegressor(RegressorMixin, BaseEstimator):
    """Symbolic regression with float64 constant re-fitting and noise-aware selection.

    Arguments:
        max_time: Wall-clock budget of the whole fit, in seconds: 70 % goes to the
            evolutionary search, the rest to re-fitting, snapping and selection (snapping
            stops when the budget is spent; not with ``generations`` set, see there).
        random_state: Seed (int) or Generator; the search and the validation split use it.
        n_jobs: Threads for Operon.
        operators: Operon operator names to search (``add sub mul div exp log sqrt square
            sin cos tan tanh pow abs ...``). Constants and variables are always allowed.
        max_length: Maximum tree length during the search.
        population_size: Operon population size.
        optimizer_iterations: Levenberg-Marquardt steps on each individual's constants.
        validation_fraction: Fraction of rows held out for model selection.
        variable_names: Input names (default: DataFrame columns, else ``x0, x1, ...``).
        variable_units: Input units (e.g. ``["m", "ns"]``), enabling dimensional analysis.
        target_name: Output name.
        target_unit: Output unit.
        units: ``"ignore"``, ``"prefer"`` (consistent models win ties within noise) or
            ``"require"`` (inconsistent models are never selected). Only used with units.
        snap_constants: Try replacing constants by 0, integers and small-denominator
            ratios (kept only if the validation error stays within noise).
        noise_sigmas: How many standard errors of the paired validation-error difference
            count as "within noise" in the selection rule.
        selection: ``"noise"`` (default; the rule of :meth:`_select`) or ``"bic"``:
            minimum of chi2 + (constants + 1) ln(n) over all rows, for data with known
            errors where ``sample_weight`` is 1/sigma^2 (e.g. fits to binned estimates,
            where a validation split would leave too few points).
        max_cancellation: If set, models with a :func:`cancellation_ratio` above it on
            the training rows (a sum whose terms nearly cancel, e.g. ``230 exp(a x) -
            231 exp(b x)``) are not selected while any model stays below it; the
            ratio is shown in ``pareto_`` (column ``cancellation``).
        candidates: Formulas (text in the variable names, constants as floats: the
            starting values) that enter the final front beside the search's models,
            with their constants re-fitted: physically structured forms the selection
            can prefer (e.g. a diffusion law ``c0 - d/c1 + c2 log(d)``).
        max_complexity: If set, models with more expression-tree nodes
            (:attr:`Formula.complexity`, counted after re-fitting) are left out of the
            final front. ``max_length`` bounds only Operon's trees; the structure search's
            sparse library fits can return sums of dozens of terms (e.g. 46 terms, each
            of order 1e-27, under a square root), which no reader can check and whose
            constants a later re-fit can push out of the domain. Default: no bound.
        generations: Maximum number of generations of the search (None: only
            ``max_time`` limits it). **The reproducible budget**: with ``generations`` set
            (and ``n_jobs=1``) the same data and ``random_state`` give the same formulas
            (identical text and JSON) in every run, process, hash seed and thread
            setting: the re-fitting and snapping after the search then run to completion
            whatever the clock says, and ``max_time`` only remains a safety cap on the
            search itself (make it generous: a search stopped by the clock is not
            reproducible). A wall-clock budget alone (``generations=None``) is inherently
            not reproducible: how far the search and the snapping get depends on the
            machine's speed and load.

    Attributes:
        formula_: The selected :class:`Formula` (the model of the conditional mean of y).
        formulas_: ``{"mean": formula_}``: the same dict of formulas as every
            interpretable learner of :mod:`ariasim.surrogates`.
        pareto_: DataFrame, one row per front model after re-fitting: ``complexity``,
            ``train_mse``, ``val_mse``, ``val_r2``, ``dims_ok``, ``expression``,
            ``formula``, ``selected``; :meth:`get_best` picks one.
        search_stats_: Operon's statistics of the search.
        variables_: The input :class:`Variable` objects.
        n_features_in_: Number of inputs.

    Example:
        >>> import numpy as np
        >>> from ariasim.surrogates import SymbolicRegressor
        >>> X = np.random.default_rng(0).uniform(1, 2, (200, 1))
        >>> sr = SymbolicRegressor(max_time=5, generations=5, population_size=100,
        ...                        random_state=0).fit(X, 3 * X[:, 0] ** 2)
        >>> sr.formulas_["mean"] is sr.formula_
        True
        >>> bool(np.allclose(sr.predict(X), 3 * X[:, 0] ** 2, rtol=1e-6))
        True
        >>> sr.get_best(0).complexity <= sr.formula_.complexity
        True
    """

    def __init__(
        self,
        *,
        max_time: float = 60.0,
        random_state: int | np.random.Generator | None = None,
        n_jobs: int = 1,
        operators: Sequence[str] = DEFAULT_OPERATORS,
        max_length: int = 30,
        population_size: int = 1000,
        optimizer_iterations: int = 10,
        validation_fraction: float = 0.25,
        variable_names: Sequence[str] | None = None,
        variable_units: Sequence[str] | None = None,
        target_name: str = "y",
        target_unit: str | None = None,
        units: str = "prefer",
        snap_constants: bool = True,
        noise_sigmas: float = 2.0,
        selection: str = "noise",
        generations: int | None = None,
        max_cancellation: float | None = None,
        candidates: Sequence[str] = (),
        structure_search: bool = True,
        structure_fraction: float = 0.3,
        max_reductions: int = 6,
        max_evaluations: int | None = None,
        max_complexity: int | None = None,
    ):
        self.max_time = max_time
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.operators = operators
        self.max_length = max_length
        self.population_size = population_size
        self.optimizer_iterations = optimizer_iterations
        self.validation_fraction = validation_fraction
        self.variable_names = variable_names
        self.variable_units = variable_units
        self.target_name = target_name
        self.target_unit = target_unit
        self.units = units
        self.snap_constants = snap_constants
        self.noise_sigmas = noise_sigmas
        self.selection = selection
        self.generations = generations
        self.max_cancellation = max_cancellation
        self.candidates = candidates
        self.structure_search = structure_search
        self.structure_fraction = structure_fraction
        self.max_reductions = max_reductions
        self.max_evaluations = max_evaluations
        self.max_complexity = max_complexity

    # ------------------------------------------------------------------ inputs
    def _check_params(self) -> None:
        if not self.max_time > 0:
            raise ConfigError("must be > 0 seconds", parameter="max_time")
        if not 0.0 < self.validation_fraction < 0.9:
            raise ConfigError("must be in (0, 0.9)", parameter="validation_fraction")
        if self.units not in _UNITS_MODES:
            raise ConfigError(f"must be one of {_UNITS_MODES}", parameter="units")
        if self.selection not in ("noise", "bic"):
            raise ConfigError("must be 'noise' or 'bic'", parameter="selection")
        if not 0.0 <= self.structure_fraction < 1.0:
            raise ConfigError("must be in [0, 1)", parameter="structure_fraction")
        if int(self.max_reductions) != self.max_reductions or self.max_reductions < 1:
            raise ConfigError("must be a positive integer", parameter="max_reductions")
        if self.max_evaluations is not None and (
            int(self.max_evaluations) != self.max_evaluations or self.max_evaluations < 1
        ):
            raise ConfigError("must be None or a positive integer", parameter="max_evaluations")
        if self.max_length < 3:
            raise ConfigError("must be >= 3", parameter="max_length")
        if self.max_complexity is not None:
            check_int("max_complexity", self.max_complexity)
        if self.generations is not None and (
            int(self.generations) != self.generations or self.generations < 1
        ):
            raise ConfigError("must be None or a positive integer", parameter="generations")

    def _variables(self, X: Any, d: int) -> list[Variable]:
        names = (
            list(self.variable_names)
            if self.variable_names is not None
            else (
                [str(c) for c in X.columns]
                if hasattr(X, "columns")
                else [f"x{j}" for j in range(d)]
            )
        )
        if len(names) != d:
            raise ConfigError(f"{len(names)} names for {d} columns", parameter="variable_names")
        units = list(self.variable_units) if self.variable_units is not None else [""] * d
        if len(units) != d:
            raise ConfigError(f"{len(units)} units for {d} columns", parameter="variable_units")
        out = []
        for j, (n, u) in enumerate(zip(names, units, strict=True)):
            try:
                check_name(n)
                out.append(Variable(n, unit=u or ""))
            except ConfigError:
                out.append(Variable(f"x{j}", unit=u or "", description=f"column {n!r}"))
        return out

    # ------------------------------------------------------------------ fit
    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, X_check: Any = None
    ) -> SymbolicRegressor:
        """Search formulas for ``y ~ f(X)``; select one. Returns ``self``.

        ``sample_weight`` enters the float64 re-fit, the validation errors and the
        selection exactly; Operon itself has no weights, so its search runs on a
        weighted resample of the training rows. ``X_check`` (optional, shape (m, d)):
        further points where a model must be finite, and stay within the range of ``y``
        widened by twice its span on each side, to be selectable; e.g. the whole domain
        when ``X`` holds only bin centres (it rejects models with poles between them).
        """
        self._check_params()
        t0 = time.perf_counter()
        clocked = self.generations is None
        # with a generation budget, the post-processing is not cut by the clock (see
        # ``generations``): the result must not depend on the machine's speed
        budget = float(self.max_time)
        # the final rows and the selection get the last few percent of the budget
        deadline = t0 + budget - min(2.0, 0.06 * budget) if clocked else math.inf
        try:
            Xa, ya = validate_data(
                self,
                X,
                y,
                dtype=np.float64,
                y_numeric=True,
                ensure_all_finite=False,
                ensure_min_samples=_MIN_ROWS,
            )
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        variables = self._variables(X, Xa.shape[1])
        if not (np.isfinite(Xa).all() and np.isfinite(ya).all()):
            raise InputError("X and y must be finite (no NaN or inf)")
        n = ya.shape[0]
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w.shape != (n,) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ConfigError(
                "must be finite, non-negative, one per row, not all zero", parameter="sample_weight"
            )
        rng = as_generator(self.random_state)
        perm = rng.permutation(n)
        n_val = min(max(10, round(self.validation_fraction * n)), n // 2)
        val, train = perm[:n_val], perm[n_val:]
        search_rows = train
        if sample_weight is not None:
            p = w[train] / w[train].sum()
            search_rows = rng.choice(train, size=train.size, replace=True, p=p)
        seed = int(rng.integers(0, 2**31 - 1))

        self.variables_ = variables
        self._dims = {sp.Symbol(v.name, real=True): parse_unit(v.unit) for v in variables}
        self._target_dim = parse_unit(self.target_unit)
        self._with_units = self.variable_units is not None or self.target_unit is not None
        symbols = [sp.Symbol(v.name, real=True) for v in variables]
        output = Variable(self.target_name, unit=self.target_unit or "")

        # 1. dimensional analysis and the cheap exact-structure searches
        # one group: written as a small ratio; several: as analysed (a common reference
        # input, x2/x1, y2/x1, ...), then the small-ratio versions after them
        found = self._reductions(variables)
        reductions = list(
            dict.fromkeys(
                [r.oriented(Xa) if len(r.groups) == 1 else r for r in found]
                + [r.oriented(Xa) for r in found if len(r.groups) > 1]
            )
        )[: self.max_reductions + 2]
        # with inputs the units leave out (see _dropped), the raw inputs are searched too
        # (structure search last, Operon instead of the reduced problem)
        dropped = self._with_units and bool(self._dropped(found, Xa.shape[1]))
        if dropped:
            reductions.append(self._raw_reduction(Xa.shape[1]))
        self.reductions_ = reductions
        structure = StructureResult([], False, 0)
        if self.structure_search and reductions:
            yv, wv = ya[val], w[val]
            var_v = float(np.average((yv - np.average(yv, weights=wv)) ** 2, weights=wv))
            structure = structure_candidates(
                Xa,
                ya,
                w,
                train,
                val,
                reductions,
                symbols,
                within_noise=lambda r, ref: self._within_noise(r, ref, wv, var_v),
                deadline=t0 + self.structure_fraction * budget if clocked else math.inf,
            )
        candidates = [Formula(e, variables, output=output) for e in structure.expressions]

        # 2. Operon on the reduced problem (groups in, y/M out) with the time left
        red = (
            next((r for r in reductions if r.groups), None)
            if self._with_units and not dropped
            else None
        )
        texts: list[str] = []
        rename: dict[str, sp.Expr] = {}
        scale: sp.Expr = sp.Integer(1)
        only_constant = self._with_units and bool(reductions) and red is None and not dropped
        left = deadline - time.perf_counter() - 0.15 * budget
        self.search_stats_: dict[str, Any] = {}
        if not structure.exact and not (only_constant and candidates) and left >= 1:
            inputs, target = Xa, ya
            rename = {f"_v{j}": s for j, s in enumerate(symbols)}
            if red is not None:
                M, P = red.evaluate(Xa)
                with np.errstate(all="ignore"):
                    g = ya / M
                if np.isfinite(P).all() and np.isfinite(g).all():
                    inputs, target, scale = P, g, red.scale_expr(symbols)
                    rename = {f"_v{j}": e for j, e in enumerate(red.group_exprs(symbols))}
            texts = self._operon(inputs[search_rows], target[search_rows], seed, left)
        for t in texts:
            f = self._candidate(t, rename, scale, variables)
            if f is not None:
                candidates.append(f)
        rows = []
        seen: set[str] = set()
        for text in self.candidates:
            try:
                extra = Formula(text, variables, output=self.target_name)
            except (FormulaSyntaxError, ConfigError) as exc:
                raise ConfigError(f"{text!r}: {exc}", parameter="candidates") from None
            extra = refit_constants(
                extra, Xa[train], ya[train], sample_weight=w[train], max_nfev=2000
            )
            candidates.append(
                extra.replace(output=Variable(self.target_name, unit=self.target_unit or ""))
            )
        # simplest first: if the budget runs out, the complex tail is kept as Operon left it
        for formula in sorted(candidates, key=lambda f: f.complexity):
            # a re-fit builds the symbolic Jacobian (one derivative per constant): on a
            # large model that is seconds that cannot be interrupted
            small = len(formula.constants) <= _MAX_REFIT_CONSTANTS or not clocked
            if time.perf_counter() < deadline and small:
                formula = _tidy(formula, Xa[train])
                formula = refit_constants(
                    formula,
                    Xa[train],
                    ya[train],
                    sample_weight=w[train],
                    max_nfev=50 * (len(formula.constants) + 1),
                )
            if self.snap_constants and time.perf_counter() < deadline and small:
                formula = self._snap(formula, Xa, ya, w, train, val, deadline)
            # constants equal to 10 significant digits make the same model
            key = str(
                formula.expression.xreplace(
                    {a: sp.Float(float(a), 10) for a in formula.expression.atoms(sp.Float)}
                )
            )
            if key in seen:
                continue
            seen.add(key)
            if X_check is not None and not _sane_on(formula, X_check, ya):
                continue
            if self.max_complexity is not None and formula.complexity > self.max_complexity:
                continue
            row = self._row(formula, Xa, ya, w, train, val)
            if self.max_cancellation is not None:
                row["cancellation"] = cancellation_ratio(formula, Xa[train])
            rows.append(row)
        if not rows:
            raise InputError("the search returned no usable model")
        table = pd.DataFrame(rows).sort_values(["complexity", "val_mse"]).reset_index(drop=True)
        if self.selection == "bic":
            chosen = self._select_bic(table, Xa, ya, w)
        else:
            chosen = self._select(table, Xa[val], ya[val], w[val])
        table["selected"] = table.index == chosen
        self.pareto_ = table
        best = table.loc[chosen, "formula"]
        self.formula_ = best.replace(
            metadata={
                **best.metadata,
                "producer": "ariasim.surrogates.SymbolicRegressor",
                "selection": (
                    "minimum BIC (chi2 with weights 1/sigma^2)"
                    if self.selection == "bic"
                    else "simplest model with validation MSE within "
                    f"{self.noise_sigmas} sigma of the best (paired residuals)"
                ),
                "val_mse": float(table.loc[chosen, "val_mse"]),
                "val_r2": float(table.loc[chosen, "val_r2"]),
                "complexity": int(table.loc[chosen, "complexity"]),
                "n_train": int(train.size),
                "n_val": int(val.size),
            }
        )
        return self

    @property
    def formulas_(self) -> dict[str, Formula]:
        """``{"mean": formula_}`` (the common interface of the interpretable learners)."""
        check_is_fitted(self, "formula_")
        return {"mean": self.formula_}

    def get_best(self, index: int | None = None) -> Formula:
        """A model of the Pareto front: the selected one (``index=None``, i.e.
        :attr:`formula_`) or the row ``index`` of :attr:`pareto_` (rows are sorted by
        complexity, simplest first)."""
        check_is_fitted(self, "pareto_")
        if index is None:
            return self.formula_
        if index not in self.pareto_.index:
            raise ConfigError(
                f"no row {index!r} in pareto_ (0..{len(self.pareto_) - 1})", parameter="index"
            )
        return self.pareto_.loc[index, "formula"]

    def _candidate(
        self, text: str, rename: dict[str, sp.Expr], scale: sp.Expr, variables: list[Variable]
    ) -> Formula | None:
        """Operon's model text (in ``_v0, _v1, ...``) as a Formula ``scale * model`` in
        the inputs, each ``_vj`` replaced by ``rename[_vj]`` (an input or a group)."""
        try:
            raw = Formula(text, [Variable(k) for k in rename])
        except (FormulaSyntaxError, ConfigError):
            return None
        expr = scale * raw.expression.xreplace({s: rename[s.name] for s in raw.symbols})
        try:
            return Formula(
                expr, variables, output=Variable(self.target_name, unit=self.target_unit or "")
            )
        except ConfigError:
            return None

    @staticmethod
    def _raw_reduction(d: int) -> Reduction:
        """``M = 1``, each input its own group: the sparse fits on the raw inputs."""
        return Reduction(
            tuple(Fraction(0) for _ in range(d)),
            tuple(tuple(Fraction(int(i == j)) for i in range(d)) for j in range(d)),
        )

    def _reductions(self, variables: list[Variable]) -> list[Reduction]:
        """Dimensional reductions with units; without units one with ``M = 1`` and each
        input its own group (the sparse fits then run on the raw inputs)."""
        if not self._with_units:
            return [self._raw_reduction(len(variables))]
        return dimensional_reductions(
            [parse_unit(v.unit) for v in variables], self._target_dim, self.max_reductions
        )

    @staticmethod
    def _dropped(reductions: list[Reduction], d: int) -> list[int]:
        """Inputs that no dimensional reduction uses: their units cannot enter a
        dimensionless group, so the analysis says the target does not depend on them.
        An input a user lists usually matters; then the law holds a constant with units
        (Highland's 13.6 MeV) and the units cannot guide the search."""
        used = {
            j
            for r in reductions
            for exps in (r.scale, *r.groups)
            for j, e in enumerate(exps)
            if e != 0
        }
        return [j for j in range(d) if j not in used]

    def _operon(self, X: np.ndarray, y: np.ndarray, seed: int, seconds: float) -> list[str]:
        """Operon's multi-objective search; its Pareto front as text in ``_v0, _v1, ...``."""
        import pyoperon as op
        from pyoperon.sklearn import SymbolicRegressor as OperonRegressor

        symbols = sorted(set(self.operators) | {"constant", "variable"})
        search = OperonRegressor(
            allowed_symbols=",".join(symbols),
            objectives=["r2", "length"],
            optimizer_iterations=self.optimizer_iterations,
            max_length=self.max_length,
            population_size=self.population_size,
            generations=1_000_000 if self.generations is None else int(self.generations),
            max_evaluations=10**12 if self.max_evaluations is None else int(self.max_evaluations),
            max_time=max(1, int(seconds if self.generations is None else 0.7 * self.max_time)),
            n_threads=self.n_jobs,
            random_state=seed,
        )
        search.fit(X, y)
        self.search_stats_ = dict(getattr(search, "stats_", {}))
        internal = {h: f"_v{j}" for j, h in enumerate(search.variables_)}
        return [op.InfixFormatter.Format(m["tree"], internal, 17) for m in search.pareto_front_]

    def _residuals(self, f: Formula, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = f(X) - y
        return np.where(np.isfinite(r), r, 1e150)

    def _row(
        self,
        f: Formula,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
    ) -> dict[str, Any]:
        rt, rv = self._residuals(f, X[train], y[train]), self._residuals(f, X[val], y[val])
        wt, wv = w[train], w[val]
        val_mse = float(np.average(rv**2, weights=wv))
        var_y = float(np.average((y[val] - np.average(y[val], weights=wv)) ** 2, weights=wv))
        dims_ok = (
            is_consistent(f.expression, self._dims, self._target_dim) if self._with_units else True
        )
        return {
            "complexity": f.complexity,
            "train_mse": float(np.average(rt**2, weights=wt)),
            "val_mse": val_mse,
            "val_r2": 1.0 - val_mse / var_y if var_y > 0 else np.nan,
            "dims_ok": bool(dims_ok),
            "expression": str(f),
            "formula": f,
        }

    def _within_noise(
        self, r_new: np.ndarray, r_ref: np.ndarray, w: np.ndarray, var_y: float
    ) -> bool:
        """Is the weighted MSE of r_new no worse than that of r_ref beyond noise?

        Paired comparison: d_i = r_new_i^2 - r_ref_i^2; accept when the weighted mean of d
        is below ``noise_sigmas`` standard errors (Kish effective size), plus a floor of
        1e-12 var(y) for noise-free data where both are at rounding level; and the MSE
        ratio is below ``1 + 2 noise_sigmas sqrt(2 / n_eff)`` (twice the ratio's noise
        for two independent residual sets, so never binding between equal models: it
        catches heavy-tailed differences, e.g. an approximation against an exact model,
        that the mean-based test lets through).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            d = r_new**2 - r_ref**2
            mean = float(np.average(d, weights=w))
            n_eff = w.sum() ** 2 / np.sum(w**2)
            se = float(np.sqrt(np.average((d - mean) ** 2, weights=w) / max(n_eff - 1, 1)))
        if not np.isfinite(mean):
            return False
        # the paired t-test alone is weak when d is heavy-tailed (an approximation near
        # an exact model: every d_i > 0, a few large): an MSE ratio beyond what noise
        # makes (relative sd sqrt(2 / n_eff) per MSE) is rejected as well
        mse_new = float(np.average(r_new**2, weights=w))
        mse_ref = float(np.average(r_ref**2, weights=w))
        if mse_new > mse_ref * (1.0 + 2.0 * self.noise_sigmas * np.sqrt(2.0 / n_eff)) + (
            1e-12 * var_y
        ):
            return False
        return mean <= self.noise_sigmas * se + 1e-12 * var_y

    def _select(self, table: pd.DataFrame, Xv: np.ndarray, yv: np.ndarray, wv: np.ndarray) -> int:
        """Documented selection rule.

        1. The reference is the model with the lowest validation MSE (among consistent
           models if ``units="require"``).
        2. Candidates are the models whose validation error is within noise of the
           reference (:meth:`_within_noise`).
        3. With units and ``units="prefer"``, consistent candidates are kept if any exist.
        4. The simplest candidate is selected: fewest expression nodes, each fitted
           (floating-point) constant counting twice (a free parameter costs more than an
           exact number such as 2 or pi); ties go to the lower validation MSE.
        """
        pool = self._uncancelled(table)
        if self._with_units and self.units == "require":
            pool = pool[pool["dims_ok"]]
            if pool.empty:
                raise InputError(
                    "no dimensionally consistent model was found; use "
                    "units='prefer' or a longer max_time"
                )
        ref = pool["val_mse"].idxmin()
        var_y = float(np.average((yv - np.average(yv, weights=wv)) ** 2, weights=wv))
        r_ref = self._residuals(pool.loc[ref, "formula"], Xv, yv)
        ok = [
            i
            for i in pool.index
            if self._within_noise(self._residuals(pool.loc[i, "formula"], Xv, yv), r_ref, wv, var_y)
        ]
        cands = pool.loc[ok]
        if self._with_units and self.units == "prefer" and cands["dims_ok"].any():
            cands = cands[cands["dims_ok"]]
        cost = {
            i: cands.loc[i, "complexity"] + len(cands.loc[i, "formula"].constants)
            for i in cands.index
        }
        return int(min(cands.index, key=lambda i: (cost[i], cands.loc[i, "val_mse"], i)))

    def _select_bic(self, table: pd.DataFrame, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> int:
        """Minimum of chi2 + (n_constants + 1) ln(n); chi2 = sum w r^2 with w = 1/sigma^2.

        Dimensionally consistent models are preferred/required as in :meth:`_select`;
        models above ``max_cancellation`` are left out first.
        """
        pool = self._uncancelled(table)
        if self._with_units and self.units != "ignore" and pool["dims_ok"].any():
            pool = pool[pool["dims_ok"]]
        n = len(y)
        bic = {
            i: float(np.sum(w * self._residuals(table.loc[i, "formula"], X, y) ** 2))
            + (len(table.loc[i, "formula"].constants) + 1) * np.log(n)
            for i in table.index
        }
        table["bic"] = [bic[i] for i in table.index]  # shown in pareto_ for every model
        return min(pool.index, key=lambda i: (bic[i], pool.loc[i, "complexity"]))

    def _uncancelled(self, table: pd.DataFrame) -> pd.DataFrame:
        """The models within ``max_cancellation`` (all of them if none is)."""
        if self.max_cancellation is None or "cancellation" not in table:
            return table
        ok = table[table["cancellation"] <= self.max_cancellation]
        return ok if len(ok) else table

    def _snap(
        self,
        f: Formula,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        deadline: float = np.inf,
    ) -> Formula:
        """Replace constants by nearby simple numbers (additive constants also by 0)
        while the fit stays within noise."""
        Xv, yv, wv = X[val], y[val], w[val]
        Xt, yt, wt = X[train], y[train], w[train]  # once, not per trial
        var_y = float(np.var(yv)) or 1.0
        keep_dims = self._with_units and is_consistent(f.expression, self._dims, self._target_dim)
        n_atoms = sum(1 for a in sp.preorder_traversal(f.expression) if isinstance(a, sp.Float))
        for _ in range(max(8, n_atoms)):  # each accepted snap removes a constant
            atoms = [a for a in sp.preorder_traversal(f.expression) if isinstance(a, sp.Float)]
            # an additive constant is also tried at 0 (dropped), whatever its size: a
            # spurious offset fitted to noise (2 pi alpha/n - 0.004) is then removed
            # when the fit without it stays within noise
            additive = {
                a
                for node in sp.preorder_traversal(f.expression)
                if isinstance(node, sp.Add)
                for a in node.args
                if isinstance(a, sp.Float)
            }
            r_cur = self._residuals(f, Xv, yv)
            changed = False
            for atom in dict.fromkeys(atoms):
                if time.perf_counter() > deadline:
                    return f
                targets = _snap_targets(float(atom))
                if atom in additive and sp.Integer(0) not in targets:
                    targets = [sp.Integer(0), *targets]
                for target in targets:
                    try:
                        trial = _tidy(f.replace(f.expression.xreplace({atom: target})), Xt)
                    except ConfigError:  # snapping made an infinity (e.g. 1/0)
                        continue
                    if keep_dims and not is_consistent(
                        trial.expression, self._dims, self._target_dim
                    ):
                        continue  # a snapped constant can no longer carry a dimension
                    if trial.constants:
                        trial = refit_constants(
                            trial,
                            Xt,
                            yt,
                            sample_weight=wt,
                            max_nfev=50 * (len(trial.constants) + 1),
                        )
                    if self._within_noise(self._residuals(trial, Xv, yv), r_cur, wv, var_y):
                        f, changed = trial, True
                        break
                if changed:
                    break
            if not changed:
                break
        return f

    # ------------------------------------------------------------------ use
    def predict(self, X: Any) -> np.ndarray:
        """Evaluate the selected formula."""
        check_is_fitted(self, "formula_")
        try:
            Xa = validate_data(self, X, reset=False, dtype=np.float64)
        except ValueError as exc:
            raise InputError(str(exc), column="X") from exc
        return self.formula_(Xa)


def cancellation_ratio(formula: Formula, X: Any) -> float:
    """How much the terms of the formula's sums cancel: the largest, over every sum in
    the expression, of the median over rows of sum_i |term_i| / |sum_i term_i|.

    1 when no sum cancels; ``230 exp(-a x) - 231 exp(-b x)`` (two large terms for a
    small result) gives a ratio in the hundreds: such a model is a numerical accident
    more than a law, and its constants mean nothing on their own.

    Example:
        >>> import numpy as np
        >>> from ariasim.surrogates import Formula
        >>> X = np.linspace(1, 2, 50)[:, None]
        >>> cancellation_ratio(Formula("2*x + 1", ["x"]), X)
        1.0
        >>> round(cancellation_ratio(Formula("230*exp(-x) - 231*exp(-1.01*x)", ["x"]), X))
        188
    """
    syms = [sp.Symbol(v.name, real=True) for v in formula.variables]
    Xa = np.asarray(X, dtype=float)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    cols = [Xa[:, j] for j in range(Xa.shape[1])]
    worst = 1.0
    for node in sp.preorder_traversal(formula.expression):
        if not isinstance(node, sp.Add):
            continue
        with np.errstate(all="ignore"):
            vals = [
                np.broadcast_to(
                    np.asarray(sp.lambdify(syms, a, "numpy")(*cols), dtype=float), (Xa.shape[0],)
                )
                for a in node.args
            ]
            ratio = np.sum(np.abs(vals), axis=0) / np.abs(np.sum(vals, axis=0))
        ratio = ratio[np.isfinite(ratio)] if np.isfinite(ratio).any() else np.array([np.inf])
        worst = max(worst, float(np.median(ratio)))
    return worst


def _sane_on(formula: Formula, X_check: Any, y: np.ndarray) -> bool:
    """Finite, and within [min - 2 span, max + 2 span] of the targets, on X_check."""
    with np.errstate(all="ignore"):
        v = formula(np.asarray(X_check, dtype=float))
    span = float(np.ptp(y)) or max(1.0, float(np.abs(y).max()))
    return bool(
        np.isfinite(v).all() and v.min() >= y.min() - 2 * span and v.max() <= y.max() + 2 * span
    )


def _snap_targets(c: float) -> list[sp.Expr]:
    """Simple numbers close to c: 0, the nearest integer, nearby p/q with q <= 4, and
    p/q pi^k (k = +-1/2, +-1, +-2) within 0.1 % (q <= 32 within 1e-6).

    Only small numbers (|c| <= 20) are snapped: every large number is within 2 % of an
    integer, and snapping it would only freeze a fitted constant."""
    out: list[sp.Expr] = []
    if abs(c) < 1e-3:
        out.append(sp.Integer(0))
    if abs(c) > 20:
        return out
    k = round(c)
    if k != 0 and abs(c - k) <= 0.02 * max(1.0, abs(k)):
        out.append(sp.Integer(k))
    fr = Fraction(c).limit_denominator(4)
    if fr.denominator > 1 and abs(c - fr) <= 0.01 * max(1.0, abs(float(fr))):
        out.append(sp.Rational(fr.numerator, fr.denominator))
    # ratios times pi^k (4 pi epsilon, h / (2 pi), ...), only when close (0.1 %); with
    # k = +-1/2 (Gaussian normalisations); larger denominators (up to 32, e.g. Rayleigh's
    # 3/(32 pi) once cos^2 is written with cos 2 theta) only when very close (1e-6)
    for k in (1, -1, 2, -2, sp.Rational(1, 2), sp.Rational(-1, 2)):
        base = math.pi ** float(k)
        for q, tol in ((4, 1e-3), (32, 1e-6)):
            r = Fraction(c / base).limit_denominator(q)
            if r != 0 and abs(r.numerator) <= 16 and abs(c - float(r) * base) <= tol * abs(c):
                out.append(sp.Rational(r.numerator, r.denominator) * sp.pi**k)
                break
    return out


def _combine_roots(expr: sp.Expr) -> sp.Expr:
    """Write products of powers with a common fractional exponent denominator as one
    root: ``sqrt(a) sqrt(b) / sqrt(c)`` becomes ``sqrt(a b / c)`` (equal for positive
    inputs; sympy does not merge them for real symbols). Only used when not larger."""

    def merge(node: sp.Expr) -> sp.Expr:
        if not isinstance(node, sp.Mul):
            return node
        by_q: dict[int, list[sp.Expr]] = {}
        rest = []
        for a in node.args:
            b, e = a.as_base_exp()
            if e.is_Rational and e.q > 1 and not b.is_number:
                by_q.setdefault(int(e.q), []).append(b ** (e * e.q))
            else:
                rest.append(a)
        if not any(len(v) > 1 for v in by_q.values()):
            return node
        roots = [sp.Pow(sp.Mul(*v), sp.Rational(1, q)) for q, v in by_q.items()]
        return sp.Mul(*rest, *roots)

    try:
        out = expr.replace(lambda e: isinstance(e, sp.Mul), merge)
    except Exception:  # sympy rewrite failing: keep the expression
        return expr
    return out if sp.count_ops(out) <= sp.count_ops(expr) else expr


def _merge_logs(expr: sp.Expr) -> sp.Expr:
    """Sums of logarithms with coefficients +-1 as one logarithm: ``log(a) - log(b)``
    becomes ``log(a/b)`` (equal for positive inputs; sympy keeps them apart for real
    symbols, and ``logcombine`` would also move factors into exponents)."""

    def signed(a: sp.Expr) -> tuple[int, sp.Expr] | None:
        if isinstance(a, sp.log):
            return 1, a.args[0]
        if isinstance(a, sp.Mul) and len(a.args) == 2 and a.args[0] == -1:
            if isinstance(a.args[1], sp.log):
                return -1, a.args[1].args[0]
        return None

    def merge(node: sp.Expr) -> sp.Expr:
        parts = [signed(a) for a in node.args]
        if any(p is None for p in parts):
            return node
        return sp.log(sp.Mul(*[arg**sign for sign, arg in parts]))  # type: ignore[misc]

    return expr.replace(lambda e: isinstance(e, sp.Add) and len(e.args) > 1, merge)


def _tidy(f: Formula, X: np.ndarray | None = None) -> Formula:
    """Cheap, safe sympy simplification: merge constants and like factors; with the
    training inputs ``X`` (columns in ``f.names`` order) also the rewrites that hold on
    their domain (:func:`~ariasim.surrogates.domain.rewrite_on_domain`: positive inputs,
    roots of squares with the data's sign, phases modulo 2 pi), when not larger.

    Full ``sympy.simplify`` is not used: on Operon's expressions it often takes seconds
    (trigsimp, factor) and would eat the time budget.
    """
    expr = f.expression
    if sp.count_ops(expr) > 60:
        # sympy's rewrites can take tens of seconds on large nested exp/log/pow trees
        # (seen once in the Feynman benchmark); such models are rarely selected anyway
        return f
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expr = sp.factor_terms(sp.powsimp(sp.expand_mul(expr)))
        if sp.count_ops(expr) <= 25:
            cancelled = sp.cancel(expr)
            if sp.count_ops(cancelled) < sp.count_ops(expr):
                expr = cancelled
    with contextlib.suppress(Exception):
        expr = _combine_roots(expr)
    with contextlib.suppress(Exception):
        expr = _merge_logs(expr)
    if X is not None:
        with contextlib.suppress(Exception):
            domain = rewrite_on_domain(expr, X, f.names)
            if sp.count_ops(domain) <= sp.count_ops(expr) + 1:
                expr = domain
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan) or (
        expr.has(sp.Abs) and not f.expression.has(sp.Abs)
    ):  # sqrt(x**2 y) = Abs(x) sqrt(y) for real x: keep the form without Abs
        return f
    return f.replace(expr)
