"""The report's plotly figures, built from what `data` reads. A chart with nothing to draw is None.

Times are plotted as epoch milliseconds on date axes (UTC). Long series are decimated by
`downsample.decimate` before they reach a trace; trades, transitions and adjustments never are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ledger.report import fmt
from ledger.report.data import Segment
from ledger.report.downsample import decimate

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d",
           "#bab0ac", "#eeca3b")
WIN, LOSS, NEUTRAL = "#2ca02c", "#d62728", "#7f7f7f"
LABEL_COLOURS = {"up": "#54a24b", "down": "#e45756", "range": "#bab0ac",
                 "low": "#72b7b2", "normal": "#4c78a8", "high": "#f58518"}


@dataclass(frozen=True)
class Chart:
    """A titled figure with a line saying how to read it."""

    key: str
    title: str
    figure: go.Figure
    note: str = ""


def colours(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per label: known regime labels keep theirs, the rest take the palette in order."""
    out: dict[str, str] = {}
    for i, label in enumerate(dict.fromkeys(labels)):
        out[label] = LABEL_COLOURS.get(label, PALETTE[i % len(PALETTE)])
    return out


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(template="plotly_white", height=height, margin={"l": 60, "r": 20, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.12}, hovermode="closest")
    fig.update_xaxes(type="date")
    return fig


def _ms(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _lane_bars(fig: go.Figure, segments: Sequence[Segment], palette: dict[str, str], lanes: Sequence[str],
               row: int | None = None) -> None:
    """Horizontal bars on lanes (the first lane on top): one trace per lane and label, so that lane
    and label are written once per trace rather than once per bar (thousands of bars stay small)."""
    kwargs = {"row": row, "col": 1} if row is not None else {}
    position = {lane: len(lanes) - 1 - i for i, lane in enumerate(lanes)}
    for label, colour in palette.items():
        for lane in lanes:
            mine = [s for s in segments if s.label == label and s.lane == lane]
            if not mine:
                continue
            start = _ms([s.start for s in mine])
            length = np.maximum(_ms([s.end for s in mine]) - start, 1.0)
            fig.add_trace(go.Bar(
                base=start, x=length, y=np.full(len(mine), position[lane], dtype=np.int8), orientation="h",
                name=label, legendgroup=label,
                showlegend=not any(t.legendgroup == label for t in fig.data),
                marker={"color": colour, "line": {"width": 0}},
                hovertext=[f"{fmt.utc(s.start)} to {fmt.utc(s.end)} ({fmt.duration(s.end - s.start)})" for s in mine],
                hovertemplate=f"{lane}: {label}<br>%{{hovertext}}<extra></extra>"), **kwargs)
    fig.update_yaxes(tickmode="array", tickvals=list(position.values()), ticktext=list(position),
                     range=[-0.6, len(lanes) - 0.4], zeroline=False, showgrid=False, **kwargs)
    fig.update_layout(barmode="overlay", bargap=0.25)


def timeline(curve: dict[str, np.ndarray], trades: Sequence[dict[str, Any]], states: Sequence[Segment]) -> Chart | None:
    """Equity with every trade's entry and exit, drawdown below it, and the state lanes below that
    (in the order the states were first entered)."""
    ts, equity, drawdown = _ms(curve["ts"]), curve["equity"].astype(float), curve["drawdown"].astype(float)
    if len(ts) == 0:
        return None
    keep = decimate(equity, drawdown)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.5, 0.2, 0.3])
    fig.add_trace(go.Scatter(x=ts[keep], y=equity[keep], name="equity", mode="lines",
                               line={"color": PALETTE[0], "width": 1.5}), row=1, col=1)
    if trades:
        _trade_markers(fig, ts, equity, trades)
    fig.add_trace(go.Scatter(x=ts[keep], y=-drawdown[keep], name="drawdown", mode="lines", fill="tozeroy",
                               line={"color": LOSS, "width": 1}), row=2, col=1)
    order = list(dict.fromkeys(s.label for s in states))
    _lane_bars(fig, states, colours(order), order, row=3)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".1%", row=2, col=1)
    note = (f"{len(ts):,} equity marks" + (f", drawn as {len(keep):,} (each bucket's first, last, lowest and "
                                            "highest kept)" if len(keep) < len(ts) else "")
            + f"; {len(trades):,} trades: triangles are entries, circles exits (green won, red lost).")
    return Chart("timeline", "Equity, drawdown and state", _layout(fig, 720), note)


def _trade_markers(fig: go.Figure, ts: np.ndarray, equity: np.ndarray, trades: Sequence[dict[str, Any]]) -> None:
    def at(times: np.ndarray) -> np.ndarray:
        return equity[np.clip(np.searchsorted(ts, times, side="right") - 1, 0, len(ts) - 1)]

    entry_ts, exit_ts = _ms([t["entry_ts"] for t in trades]), _ms([t["exit_ts"] for t in trades])
    about = [[f"{t['trade_id']} {t['symbol']} {t['side']} ({t['mode']}, {t['state']})",
              f"{fmt.utc(t['entry_ts'])} to {fmt.utc(t['exit_ts'])}, {t['exit_reason']}", fmt.num(t["pnl"])]
             for t in trades]
    hover = "%{customdata[0]}<br>%{customdata[1]}<br>pnl %{customdata[2]}<extra></extra>"
    fig.add_trace(go.Scatter(
        x=entry_ts, y=at(entry_ts), mode="markers", name="entries", customdata=about, hovertemplate=hover,
        marker={"symbol": ["triangle-up" if t["side"] == "long" else "triangle-down" for t in trades],
                "size": 7, "color": PALETTE[1]}), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=exit_ts, y=at(exit_ts), mode="markers", name="exits", customdata=about, hovertemplate=hover,
        marker={"size": 6, "color": [WIN if (t["pnl"] or 0) > 0 else LOSS for t in trades]}), row=1, col=1)


def kelly_chart(rows: Sequence[dict[str, Any]]) -> Chart | None:
    """Kelly risk fraction against its cap, and its inputs p, b and f*."""
    if not rows:
        return None
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        specs=[[{}], [{"secondary_y": True}]])
    updates = [r for r in rows if r["kind"] == "kelly_update"]
    entries = [r for r in rows if r["kind"] != "kelly_update"]
    for subset, name, mode in ((updates, "Kelly risk (ratcheted)", "lines+markers"),
                               (entries, "risk of a Kelly-sized entry", "markers")):
        if subset:
            fig.add_trace(go.Scatter(
                x=_ms([r["ts"] for r in subset]), y=[r["risk_fraction_after"] for r in subset], name=name,
                mode=mode, line={"shape": "hv"}, hovertext=[r["reason"] for r in subset]), row=1, col=1)
    capped = [r for r in rows if r["cap"] is not None]
    if capped:
        fig.add_trace(go.Scatter(x=_ms([r["ts"] for r in capped]), y=[r["cap"] for r in capped], name="cap",
                                 mode="lines", line={"dash": "dash", "color": LOSS, "shape": "hv"}), row=1, col=1)
    x = _ms([r["ts"] for r in rows])
    for key, name in (("p", "p (win rate)"), ("f_star", "f* (full Kelly)")):
        fig.add_trace(go.Scatter(x=x, y=[r[key] for r in rows], name=name, mode="lines+markers"), row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=[r["b"] for r in rows], name="b (avg win / avg loss)", mode="lines+markers",
                             line={"dash": "dot"}), row=2, col=1, secondary_y=True)
    fig.update_yaxes(title_text="risk fraction", tickformat=".1%", row=1, col=1)
    fig.update_yaxes(title_text="p, f*", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="b", row=2, col=1, secondary_y=True)
    note = (f"{len(updates)} ratchet steps and {len(entries)} Kelly-sized entries; f* = p - (1 - p) / b, "
            "the risk taken is a fraction of it, stepped up by at most one step per closed trade and held "
            "under the cap.")
    return Chart("kelly", "Kelly risk fraction and its inputs", _layout(fig, 480), note)


def breaker_chart(curve: dict[str, np.ndarray], states: Sequence[Segment], moves: Sequence[dict[str, Any]],
                  breaker_states: Sequence[str]) -> Chart | None:
    """Drawdown with every breaker trip, and the cooldown spent in the breaker states after it."""
    trips = [m for m in moves if m["dest"] in breaker_states]
    if not trips:
        return None
    ts, drawdown = _ms(curve["ts"]), curve["drawdown"].astype(float)
    keep = decimate(drawdown)
    fig = go.Figure(go.Scatter(x=ts[keep], y=-drawdown[keep], name="drawdown", mode="lines",
                                 line={"color": NEUTRAL, "width": 1}))
    spans = [s for s in states if s.label in breaker_states]
    for span in spans:
        fig.add_vrect(x0=span.start, x1=max(span.end, span.start + 1), fillcolor=LOSS, opacity=0.15, line_width=0)

    def dd_at(times: np.ndarray) -> np.ndarray:
        return -drawdown[np.clip(np.searchsorted(ts, times, side="right") - 1, 0, len(ts) - 1)]

    resumes = [m for m in moves if m["source"] in breaker_states and m["dest"] not in breaker_states]
    for subset, name, colour, symbol in ((trips, "trip", LOSS, "x"), (resumes, "resume", WIN, "circle-open")):
        if subset:
            x = _ms([m["ts"] for m in subset])
            fig.add_trace(go.Scatter(
                x=x, y=dd_at(x), mode="markers", name=name, marker={"color": colour, "size": 11, "symbol": symbol},
                hovertext=[f"{fmt.utc(m['ts'])} {m['source']} -> {m['dest']} [{m['trigger']}]<br>{m['reason']}"
                           for m in subset], hoverinfo="text"))
    fig.update_yaxes(title_text="drawdown", tickformat=".1%")
    cooldown = sum(s.end - s.start for s in spans)
    note = (f"{len(trips)} trips, {len(resumes)} resumes; shaded: time in {', '.join(breaker_states)} "
            f"({fmt.duration(cooldown)} in all).")
    return Chart("breaker", "Breaker trips and cooldowns", _layout(fig, 340), note)


def regime_chart(segments: Sequence[Segment]) -> Chart | None:
    """Each symbol's trend and volatility label over time."""
    if not segments:
        return None
    fig = go.Figure()
    lanes = list(dict.fromkeys(s.lane for s in segments))
    _lane_bars(fig, segments, colours([s.label for s in segments]), lanes)
    changes = len(segments) - len(lanes)
    fig = _layout(fig, 140 + 40 * len(lanes))
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"}, margin={"t": 40})
    return Chart("regimes", "Regime labels", fig,
                 f"{changes:,} label changes over {len(lanes)} lanes (the `regimes` view).")


def ensemble_weights_chart(rows: Sequence[dict[str, Any]]) -> Chart | None:
    """Each member's weight in the ensemble after every update."""
    rows = [r for r in rows if isinstance(r["after"], dict)]
    if not rows:
        return None
    x = _ms([r["ts"] for r in rows])
    members = sorted({m for r in rows for m in r["after"]})
    fig = go.Figure([go.Scatter(x=x, y=[r["after"].get(m) for r in rows], name=m, mode="lines",
                                line={"shape": "hv"}, stackgroup="weights") for m in members])
    fig.update_yaxes(title_text="weight", range=[0, 1])
    return Chart("ensemble_weights", "Ensemble weights per member", _layout(fig, 340),
                 f"{len(rows):,} updates (`ensemble_weights` adjustments): a softmax of each member's recent "
                 "log-loss, stacked to 1.")


def _threshold(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("threshold")
    return float(value) if isinstance(value, int | float) else None


def gate_threshold_chart(rows: Sequence[dict[str, Any]], start_ts: int, end_ts: int) -> Chart | None:
    """The ML gate's probability threshold over the run: where it started, every change, where it ended."""
    if not rows:
        return None
    x = _ms([start_ts] + [r["ts"] for r in rows] + [end_ts])
    y = [_threshold(rows[0]["before"])] + [_threshold(r["after"]) for r in rows] + [_threshold(rows[-1]["after"])]
    hover = ["as configured"] + [f"{fmt.utc(r['ts'])}: {r['reason']}" for r in rows] + ["at the end"]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", name="threshold", line={"shape": "hv"},
                               hovertext=hover))
    fig.update_yaxes(title_text="threshold")
    return Chart("gate_threshold", "Gate threshold", _layout(fig, 300),
                 f"{len(rows)} changes (`gate_threshold` adjustments).")


def retrains_chart(rows: Sequence[dict[str, Any]]) -> Chart | None:
    """Every retrain: the challenger's and the champion's held-out log-loss, promoted or rejected."""
    if not rows:
        return None
    fig = go.Figure()
    gates = [(r.get("evidence") or {}).get("gate") or {} for r in rows]
    promoted = [bool((r.get("after") or {}).get("promoted")) for r in rows]
    x = _ms([r["ts"] for r in rows])
    text = [f"{(r.get('after') or {}).get('challenger')}: {'promoted' if p else 'rejected'}<br>{r['reason']}"
            for r, p in zip(rows, promoted, strict=True)]
    fig.add_trace(go.Scatter(
        x=x, y=[g.get("challenger_log_loss") for g in gates], mode="markers", name="challenger",
        marker={"size": 12, "color": [WIN if p else LOSS for p in promoted], "symbol": "diamond"},
        hovertext=text, hoverinfo="text"))
    fig.add_trace(go.Scatter(x=x, y=[g.get("champion_log_loss") for g in gates], mode="markers",
                             name="champion before", marker={"size": 8, "color": NEUTRAL}))
    fig.add_trace(go.Scatter(x=x, y=[g.get("challenger_base_log_loss") for g in gates], mode="markers",
                             name="base-rate log-loss", marker={"symbol": "line-ew-open", "size": 18,
                                                                "color": NEUTRAL}))
    fig.update_yaxes(title_text="held-out log-loss")
    n = sum(promoted)
    return Chart("retrains", "Retrains: promoted and rejected", _layout(fig, 320),
                 f"{len(rows)} retrains, {n} promoted (green), {len(rows) - n} rejected (red): "
                 "`model_retrain` adjustments; the models table below lists every version.")


def _entropy(rate: float | None) -> float | None:
    """Log-loss of always predicting the base rate: the majority-class predictor's log-loss."""
    if rate is None or not 0 < rate < 1:
        return None
    return -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))


def hit_rate_chart(rows: Sequence[dict[str, Any]]) -> Chart | None:
    """Hit rate and log-loss per model against the coin flip and the majority class."""
    if not rows:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=("hit rate", "log-loss"), horizontal_spacing=0.1)
    models = [r["model"] for r in rows]
    fig.add_trace(go.Bar(x=models, y=[r["hit_rate"] for r in rows], name="hit rate", marker_color=PALETTE[0],
                         hovertext=[f"{r['predictions']:,} predictions" for r in rows]), row=1, col=1)
    fig.add_trace(go.Bar(x=models, y=[r["log_loss"] for r in rows], name="log-loss", marker_color=PALETTE[1]),
                  row=1, col=2)
    majority = [float(r["majority_rate"]) if r["majority_rate"] is not None else None for r in rows]
    for col, coin, base, label in ((1, 0.5, majority, "majority class"),
                                   (2, math.log(2), [_entropy(m) for m in majority], "base rate")):
        fig.add_trace(go.Scatter(x=models, y=[coin] * len(models), name=f"coin flip ({coin:.3f})", mode="lines",
                                 line={"dash": "dash", "color": NEUTRAL}, showlegend=col == 1), row=1, col=col)
        fig.add_trace(go.Scatter(x=models, y=base, name=label, mode="lines", line={"dash": "dot", "color": LOSS}),
                      row=1, col=col)
    fig.update_layout(template="plotly_white", height=360, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return Chart("hit_rates", "Hit rate and log-loss per model", fig,
                 "Out of sample (the `model_hit_rates` view). Hit rate: p > 0.5 against the outcome; baselines "
                 "are a coin flip and always predicting the majority outcome. Log-loss baselines: a coin flip "
                 "(ln 2) and always predicting the base rate (lower is better).")
