"""Self-contained HTML reports: text, tables, matplotlib figures and formulas in one file.

Figures are embedded as base64 PNG and formulas are rendered with matplotlib's mathtext
(falling back to monospace text), so a report opens offline, in any browser, with no
scripts and no network.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ariasim import __version__
from ariasim.utils import atomic_path

__all__ = ["HtmlReport", "figure_to_png", "latex_to_png"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1150px;color:#1d2330;line-height:1.45;padding:0 1em}
h1{border-bottom:3px solid #2b6cb0;padding-bottom:.3em}h2{margin-top:2em;color:#2b6cb0}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #cbd2dc;padding:.3em .6em;text-align:right}
th{background:#eef2f7}td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0}figcaption{font-size:.9em;color:#555}
img{max-width:100%}code,.formula{font-family:ui-monospace,Menlo,Consolas,monospace;
background:#f4f6f9;padding:.1em .3em;border-radius:3px;word-break:break-all}
.meta{color:#666;font-size:.85em}.pass{color:#1a7f37;font-weight:600}
.fail{color:#c62828;font-weight:600}
"""


def figure_to_png(fig: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (the figure is closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def latex_to_png(latex: str, fontsize: int = 14) -> bytes | None:
    """Render a LaTeX formula with matplotlib mathtext; None if mathtext cannot parse it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(0.01, 0.01))
    fig.text(0, 0, f"${latex}$", fontsize=fontsize)
    try:
        return figure_to_png(fig, dpi=120)
    except Exception:  # mathtext covers a subset of LaTeX
        plt.close(fig)
        return None


@dataclass
class HtmlReport:
    """Build a report section by section, then :meth:`save` it atomically.

    Arguments:
        title: Page title and heading.
        subtitle: Optional line under the heading.

    Example:
        >>> import tempfile, pathlib
        >>> rep = HtmlReport("Photon surrogate").heading("Yield").text("R2 = 0.998 < 1")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = rep.save(pathlib.Path(tmp) / "report.html")
        ...     "R2 = 0.998 &lt; 1" in path.read_text()
        True
    """

    title: str
    subtitle: str = ""
    _parts: list[str] = field(default_factory=list)
    n_figures: int = 0

    def heading(self, text: str, level: int = 2) -> HtmlReport:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def text(self, text: str) -> HtmlReport:
        """A paragraph of plain text (escaped)."""
        self._parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def html(self, fragment: str) -> HtmlReport:
        """Trusted HTML written by ariasim itself (never user input)."""
        self._parts.append(fragment)
        return self

    def figure(self, fig: Any, caption: str = "") -> HtmlReport:
        """Embed a matplotlib figure as PNG."""
        data = base64.b64encode(figure_to_png(fig)).decode()
        self.n_figures += 1
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(
            f'<figure><img alt="{html.escape(caption or "figure")}" '
            f'src="data:image/png;base64,{data}">{cap}</figure>'
        )
        return self

    def table(
        self, df: pd.DataFrame, caption: str = "", float_format: str = "{:.4g}", index: bool = False
    ) -> HtmlReport:
        """A table from a DataFrame (values escaped)."""
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        rows = []
        for idx, row in df.iterrows():
            cells = [idx] if index else []
            cells += list(row.values)
            rows.append(
                "<tr>"
                + "".join(f"<td>{html.escape(_fmt(v, float_format))}</td>" for v in cells)
                + "</tr>"
            )
        self._parts.append(
            f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
        return self

    def formula(self, latex: str, text: str | None = None, max_latex: int = 220) -> HtmlReport:
        """A formula rendered from LaTeX (mathtext), with its plain text below.

        Formulas longer than ``max_latex`` characters of LaTeX are shown as text only: a
        one-line image of them would be too small to read."""
        png = latex_to_png(latex) if len(latex) <= max_latex else None
        if png is not None:
            self._parts.append(
                f'<p><img class="math" alt="{html.escape(text or latex)}" '
                f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                "</p>"
            )
        if text or png is None:
            self._parts.append(f'<p class="formula">{html.escape(text or latex)}</p>')
        return self

    def render(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>{sub}"
            f'<p class="meta">ariasim {__version__} &middot; {stamp}</p>'
            + "\n".join(self._parts)
            + "</body></html>"
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report atomically; returns the path."""
        with atomic_path(path) as tmp:
            tmp.write_text(self.render(), encoding="utf-8")
        return Path(path)


def _fmt(v: Any, float_format: str) -> str:
    if isinstance(v, float):
        return float_format.format(v)
    return str(v)
