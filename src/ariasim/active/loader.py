"""Load a saved controller and answer ``decide(features) -> (accept, weight)``, standalone.

This module is what another production framework (IceProd, Gaudi, a shell script) needs
to use a controller trained by ariasim: it imports only :mod:`json`, :mod:`pathlib`,
NumPy, LightGBM and :mod:`ariasim.errors` (a module without imports), not pandas nor the
rest of ariasim. A controller folder holds

* ``controller.json``: the features, the mode, the acceptance parameters (``lambda_``,
  ``a_min``), the isotonic calibration as two arrays, the density bins, the training
  sizes and the format version;
* ``model.txt``: the LightGBM model in LightGBM's own text format (never a pickle).

:class:`ariasim.active.controller.Controller` predicts through the same
:class:`SavedController` code, so a loaded controller decides exactly as the one that
was trained.

Acceptance (REFERENCE.md section 4): an event with features ``x`` goes on with
probability ``a(x) = max(a_min, min(1, lambda_ * sqrt(s(x))))`` and then carries the
weight ``1 / a(x)``; ``s(x)`` is the importance (see
:class:`~ariasim.active.controller.Controller`). In ``threshold`` mode (biased) an event
goes on iff its predicted probability reaches ``threshold``, with weight 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from ariasim.errors import InputError

__all__ = ["FORMAT", "SavedController", "load_controller"]

#: Format name written in ``controller.json`` (bumped on an incompatible change).
FORMAT = "ariasim.active.controller/1"
MODES = ("sqrt", "density", "threshold")
OBJECTIVES = ("binary", "regression", "multiclass")
JSON_NAME = "controller.json"
MODEL_NAME = "model.txt"


class SavedController:
    """A trained controller: predictions, acceptance and decisions for a batch of events.

    Arguments:
        state: The content of ``controller.json`` (see :meth:`to_dict`).
        model: The LightGBM model as a string (``model.txt``).
        source: Where ``state`` came from, for error messages.

    Attributes:
        features: The model's input columns, in order.
        inputs: The columns :meth:`decide` needs: ``features`` and, when the controller
            uses generation weights, ``weight_column`` last.

    Example:
        >>> import numpy as np, tempfile
        >>> from ariasim.active.controller import Controller
        >>> rng = np.random.default_rng(0)
        >>> x = rng.exponential(size=(2000, 1))
        >>> y = rng.random(2000) < 1 / (1 + np.exp(-4 * (x[:, 0] - 2)))
        >>> c = Controller(["x"], n_estimators=20).fit(x, y, cost_fixed=0.01, cost_skippable=1)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = c.save(tmp)
        ...     saved = load_controller(tmp)
        ...     accept, weight = saved.decide({"x": [0.1, 3.0]}, rng=1)
        >>> saved.features, bool(np.all(weight >= 1))
        (('x',), True)
    """

    def __init__(
        self,
        state: Mapping[str, Any],
        model: str | None,
        *,
        source: str = "state",
        model_source: str | None = None,
    ):
        self.state = validate_state(state, source)
        self.source = source
        self.features: tuple[str, ...] = tuple(self.state["features"])
        wcol = self.state.get("weight_column")
        self.weight_column: str | None = wcol
        self.inputs: tuple[str, ...] = self.features + ((wcol,) if wcol else ())
        self.mode: str = self.state["mode"]
        self.lambda_: float = float(self.state["lambda_"])
        self.a_min: float = float(self.state["a_min"])
        self.threshold: float | None = self.state.get("threshold")
        self.model_string = model
        self.booster = load_booster(
            model, model_source or f"{source} ({MODEL_NAME})", len(self.features)
        )
        cal = self.state.get("calibration") or {}
        self.cal_x = np.asarray(cal.get("x", []), dtype=float)
        self.cal_y = np.asarray(cal.get("y", []), dtype=float)
        dens = self.state.get("density") or {}
        self.rho = np.asarray(dens.get("rho", []), dtype=float)

    # -- inputs ------------------------------------------------------------------------
    def columns(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(features matrix, generation weights or None)`` from ``X``: a 2-D array in
        :attr:`inputs` order, or a mapping / DataFrame with (at least) those columns."""
        if hasattr(X, "keys") and not isinstance(X, np.ndarray):
            keys = set(X.keys())
            for name in self.inputs:
                if name not in keys:
                    raise InputError(
                        f"the controller needs the feature {name!r}; got "
                        f"{', '.join(map(repr, sorted(map(str, keys)))) or 'no columns'}",
                        column=name,
                    )
            cols = [np.asarray(X[name], dtype=float).reshape(-1) for name in self.inputs]
            lengths = {len(c) for c in cols}
            if len(lengths) > 1:
                raise InputError(f"the feature columns differ in length: {sorted(lengths)}")
            M = np.column_stack(cols) if cols else np.empty((0, 0))
        else:
            M = np.asarray(X, dtype=float)
            if M.ndim == 1 and len(self.inputs) == 1:
                M = M.reshape(-1, 1)
            if M.ndim != 2 or M.shape[1] != len(self.inputs):
                raise InputError(
                    f"expected a 2-D array with {len(self.inputs)} columns "
                    f"({', '.join(self.inputs)}), got shape {M.shape}"
                )
        nf = len(self.features)
        w = M[:, nf] if self.weight_column else None
        return M[:, :nf], w

    # -- predictions -------------------------------------------------------------------
    def raw(self, F: np.ndarray) -> np.ndarray:
        """The LightGBM model's raw output for the feature matrix ``F`` (probabilities)."""
        if len(F) == 0:
            k = int(self.state.get("num_class", 1))
            return np.empty((0, k)) if self.state["objective"] == "multiclass" else np.empty(0)
        return np.asarray(self.booster.predict(F, num_threads=1), dtype=float)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Apply the isotonic calibration (identity when there is none)."""
        if len(self.cal_x) == 0:
            return raw
        return np.interp(raw, self.cal_x, self.cal_y)

    def pass_probability(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(p, class probabilities or None)``: the calibrated probability to pass (or
        the predicted relevance) and, in density mode, the per-class probabilities."""
        raw = self.raw(F)
        if self.state["objective"] == "multiclass":
            return 1.0 - raw[:, 0], raw
        return self.calibrate(raw), None

    def importance(
        self, p: np.ndarray, classes: np.ndarray | None, w: np.ndarray | None
    ) -> np.ndarray:
        """The importance ``s``: ``p (w/w_med)^2``, or ``(w/w_med)^2 sum_k p_k/rho_k^2``."""
        if self.mode == "density" and classes is not None:
            s = classes[:, 1:] @ (1.0 / self.rho**2)
        else:
            s = np.clip(p, 0.0, None)
        if w is not None:
            s = s * (w / float(self.state["weight_scale"])) ** 2
        return s

    def score(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(p, a)``: the predicted pass probability (relevance) and the acceptance."""
        F, w = self.columns(X)
        p, classes = self.pass_probability(F)
        if self.mode == "threshold":
            return p, np.ones(len(p))
        s = self.importance(p, classes, w)
        a = np.clip(self.lambda_ * np.sqrt(s), self.a_min, 1.0)
        return p, a

    def predict(self, X: Any) -> np.ndarray:
        """The calibrated probability to pass (or the predicted relevance) per event."""
        return self.pass_probability(self.columns(X)[0])[0]

    def acceptance(self, X: Any) -> np.ndarray:
        """The acceptance probability ``a(x)`` per event (1 in threshold mode)."""
        return self.score(X)[1]

    def decide_details(self, X: Any, rng: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(accept, a, p)`` for a batch; one uniform draw per event from ``rng``."""
        p, a = self.score(X)
        if self.mode == "threshold":
            return p >= float(self.threshold or 0.0), a, p
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        u = gen.random(len(a))
        return u < a, a, p

    def decide(self, X: Any, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(accept, weight)`` for a batch of events: go on with probability ``a(x)``
        and carry ``weight = 1/a(x)``. ``rng``: a NumPy Generator, a seed or None."""
        accept, a, _ = self.decide_details(X, rng)
        return accept, 1.0 / a

    # -- files -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The state and the model string as one JSON-able dict (:meth:`from_dict`)."""
        return {**self.state, "model": self.model_string}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "dict") -> SavedController:
        """Rebuild from :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: a controller must be a JSON object")
        state = {k: v for k, v in data.items() if k != "model"}
        return cls(state, data.get("model"), source=source)

    def save(self, folder: str | Path) -> Path:
        """Write ``controller.json`` and ``model.txt`` into ``folder``; returns it."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        if self.model_string is not None:
            (out / MODEL_NAME).write_text(self.model_string, encoding="utf-8")
        text = json.dumps(self.state, indent=1, sort_keys=True, allow_nan=False)
        (out / JSON_NAME).write_text(text + "\n", encoding="utf-8")
        return out


def validate_state(state: Any, source: str) -> dict[str, Any]:
    """Check the fields of a controller's JSON state; an :class:`InputError` naming
    ``source`` and the field on anything missing or malformed."""

    def bad(field: str, msg: str) -> InputError:
        return InputError(msg, path=source, field=field)

    if not isinstance(state, Mapping):
        raise InputError("a controller must be a JSON object", path=source)
    if state.get("format") != FORMAT:
        raise bad("format", f"expected {FORMAT!r}, got {state.get('format')!r}")
    feats = state.get("features")
    if not isinstance(feats, list) or not feats or not all(isinstance(f, str) for f in feats):
        raise bad("features", "must be a non-empty list of column names")
    if state.get("mode") not in MODES:
        raise bad("mode", f"must be one of {', '.join(MODES)}, got {state.get('mode')!r}")
    if state.get("objective") not in OBJECTIVES:
        raise bad("objective", f"must be one of {', '.join(OBJECTIVES)}")
    for name in ("lambda_", "a_min"):
        v = state.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise bad(name, f"must be a finite number, got {v!r}")
    if not 0 < state["a_min"] <= 1:
        raise bad("a_min", f"must be in (0, 1], got {state['a_min']}")
    if state["lambda_"] <= 0:
        raise bad("lambda_", f"must be positive, got {state['lambda_']}")
    if state["mode"] == "threshold" and not isinstance(state.get("threshold"), (int, float)):
        raise bad("threshold", "threshold mode needs a number")
    wcol = state.get("weight_column")
    if wcol is not None:
        ws = state.get("weight_scale")
        if not isinstance(wcol, str) or not isinstance(ws, (int, float)) or not ws > 0:
            raise bad("weight_scale", "a weight column needs a positive weight_scale")
    cal = state.get("calibration") or {}
    if not isinstance(cal, Mapping):
        raise bad("calibration", "must be an object with arrays x and y")
    try:
        cx = np.asarray(cal.get("x", []), dtype=float)
        cy = np.asarray(cal.get("y", []), dtype=float)
    except (TypeError, ValueError):
        raise bad("calibration", "x and y must be arrays of numbers") from None
    if cx.shape != cy.shape or cx.ndim != 1 or (cx.size and not np.all(np.diff(cx) >= 0)):
        raise bad("calibration", "x and y must be 1-D arrays of one length, x increasing")
    if state["objective"] == "multiclass":
        rho = np.asarray((state.get("density") or {}).get("rho", []), dtype=float)
        if state.get("num_class") != rho.size + 1 or not np.all(rho > 0):
            raise bad("density", "rho must hold one positive density per pass class")
    return dict(state)


def load_booster(model: str | None, source: str, n_features: int) -> lgb.Booster:
    """A LightGBM booster from its text, checked against the number of features."""
    where = source
    if not isinstance(model, str) or not model.strip():
        raise InputError("the LightGBM model is missing or empty", path=where)
    try:
        booster = lgb.Booster(model_str=model)
    except lgb.basic.LightGBMError as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(f"not a LightGBM model: {msg}", path=where) from None
    if booster.num_feature() != n_features:
        raise InputError(
            f"the model has {booster.num_feature()} features, controller.json lists {n_features}",
            path=where,
        )
    return booster


def load_controller(folder: str | Path) -> SavedController:
    """Load the controller saved in ``folder`` (``controller.json`` + ``model.txt``).

    Raises:
        InputError: a missing or garbled file (naming it), or an invalid field.
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError("controller folder not found", path=d)
    jpath, mpath = d / JSON_NAME, d / MODEL_NAME
    for p in (jpath, mpath):
        if not p.is_file():
            raise InputError("missing file of a saved controller", path=p)
    try:
        state = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"invalid JSON: {exc}", path=jpath) from None
    try:
        model = mpath.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the model: {exc}", path=mpath) from None
    state = validate_state(state, str(jpath))
    return SavedController(state, model, source=str(jpath), model_source=str(mpath))
