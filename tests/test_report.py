"""Tests of the self-contained HTML report builder."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from ariasim.report import HtmlReport, latex_to_png


def test_report_is_self_contained_and_escaped(tmp_path):
    rep = HtmlReport("Photon <surrogate>", subtitle="bulk ice & friends")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    rep.heading("Figures").figure(fig, caption="a line")
    rep.table(pd.DataFrame({"metric": ["ks<"], "value": [0.0123456]}), caption="metrics")
    rep.formula(r"\frac{a}{b^{2}}", text="a/b^2").text("<script>alert(1)</script>")
    path = rep.save(tmp_path / "r.html")
    page = path.read_text()
    assert page.count("data:image/png;base64,") == 2  # the figure and the formula
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Photon &lt;surrogate&gt;" in page and "0.01235" in page and "ks&lt;" in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    assert rep.n_figures == 1


def test_unrenderable_latex_falls_back_to_text(tmp_path):
    assert latex_to_png(r"\frac{a}{b}") is not None
    rep = HtmlReport("t").formula(r"\notacommand{x}", text="x")
    page = rep.render()
    assert 'class="formula"' in page
    long = HtmlReport("t").formula("+".join(["x"] * 200), text="long").render()
    assert "data:image/png" not in long and "long" in long
