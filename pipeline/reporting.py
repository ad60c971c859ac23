"""Small HTML pages and their MLflow runs, for the replay and the effect reports."""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def table_html(frame: pd.DataFrame, digits: int = 3) -> str:
    """Render a frame (its index as the first column) as an HTML table, NaN as '-'."""

    def fmt(v: object) -> str:
        if isinstance(v, float | np.floating):
            if math.isnan(v):
                return "-"
            return f"{v:,.{digits}f}" if abs(v) < 1e5 else f"{v:,.0f}"
        if isinstance(v, int | np.integer):
            return f"{v:,}"
        return html.escape(str(v))

    frame = frame.reset_index()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_html(fig, alt: str) -> str:
    """Embed a matplotlib figure as a PNG image and close it."""
    import matplotlib.pyplot as plt

    from models.report import figure_to_png

    data = base64.b64encode(figure_to_png(fig)).decode("ascii")
    plt.close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_page(title: str, sections: list[tuple[str, str]], note: str = "") -> str:
    """A self-contained page: a title, an optional note, then (heading, html) sections."""
    from models.report import CSS

    parts = [f"<h1>{html.escape(title)}</h1>"]
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    )


def log_report_run(
    experiment: str,
    run_name: str,
    page: str,
    page_name: str,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    frames: Mapping[str, pd.DataFrame],
    note: str = "",
    pages: Mapping[str, str] | None = None,
) -> str:
    """Log a report as an MLflow run: params, metrics, the HTML pages and tables (CSV).

    ``note`` becomes the run's description in the MLflow UI; ``pages`` are
    more HTML artifacts by file name.
    """
    import mlflow

    from models.tracking import NOTE_TAG, ensure_experiment, tracking_lock, tracking_uri

    uri = tracking_uri()
    clean = {
        "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in k): float(v)
        for k, v in metrics.items()
        if v is not None and np.isfinite(v)
    }
    with tracking_lock(uri):
        experiment_id = ensure_experiment(experiment, uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics(clean)
            mlflow.log_text(page, page_name)
            for name, extra in (pages or {}).items():
                mlflow.log_text(extra, name)
            if note:
                mlflow.set_tag(NOTE_TAG, note[:5000])
            for name, frame in frames.items():
                mlflow.log_text(frame.to_csv(), f"tables/{name}.csv")
            run_id = run.info.run_id
    log.info("logged %s run %s", experiment, run_id)
    return run_id


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-interval of a small sample (seeds); the interval is NaN for one value.

    Examples
    --------
    >>> m, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))
    >>> round(m, 2), round(lo, 2), round(hi, 2)
    (2.0, -0.48, 4.48)
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    m = float(values.mean())
    if len(values) < 2:
        return m, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return m, m - float(half), m + float(half)
