"""Named views answering what users ask of a ledger: edge, Kelly inputs, drawdown, what changed.

Each view is an SQL template over the base tables, grouped by the run keys given to
`create_views`: `run_id` inside one ledger, `run_dir, run_id` over a sweep's ledgers
(`ledger.cli` unions the base tables first). Views are TEMP, so a ledger file never stores them
and an old ledger always gets the current definitions.

Times: the base tables hold simulated times as int epoch milliseconds (UTC); the views show them
as TIMESTAMP in UTC (`ts`, `*_ts`), so `WHERE ts >= '2023-01-01'` reads as it says. A duration
keeps its unit in its name (`ms`). Ratios are ratios (0.25 is a quarter); a column would say
`_pct` if it held percent.

State roles come from `state_tags` (the tags the machine's YAML gives its states), never from
state names: `breaker` lists the transitions into or out of a state tagged `breaker`.

The `kelly` view reads `kelly_update` adjustments (the ratcheted Kelly risk, after each closed
trade) and `risk_fraction` adjustments (the risk of a Kelly-sized entry, regime factor applied)
whose evidence holds `p`, `b`, `f_star`, `regime_factor` and `cap`, and whose before/after is the
risk fraction, either a bare number or `{"risk_fraction": x}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class View:
    """A named view: what it answers, and its SQL template."""

    name: str
    doc: str
    template: str


def _trade_stats(by: str) -> str:
    """Win/loss statistics and the Kelly edge p - (1 - p) / b, with b = avg win / avg loss."""
    group = "{keys}, agent" + by
    return f"""
    SELECT {group}, trades, wins, losses, total_wins, total_losses,
        wins / trades AS win_rate, avg_win, avg_loss,
        avg_win / nullif(avg_loss, 0) AS win_loss_ratio,
        CASE WHEN avg_win / nullif(avg_loss, 0) > 0
             THEN wins / trades - (1 - wins / trades) / (avg_win / avg_loss) END AS kelly_edge,
        net_pnl, fees, funding
    FROM (
        SELECT {group},
            count(*) AS trades,
            count(*) FILTER (WHERE pnl > 0) AS wins,
            count(*) FILTER (WHERE pnl <= 0) AS losses,
            coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0) AS total_wins,
            coalesce(abs(sum(pnl) FILTER (WHERE pnl <= 0)), 0) AS total_losses,
            avg(pnl) FILTER (WHERE pnl > 0) AS avg_win,
            abs(avg(pnl) FILTER (WHERE pnl <= 0)) AS avg_loss,
            sum(pnl) AS net_pnl, sum(fees) AS fees, sum(funding) AS funding
        FROM trades GROUP BY {group})
    ORDER BY {group}
    """


def _performance_by(column: str) -> str:
    return f"""
    SELECT {{keys}}, agent, {column}, count(*) AS trades,
        count(*) FILTER (WHERE pnl > 0) / count(*) AS win_rate,
        sum(pnl) AS net_pnl, avg(pnl) AS avg_pnl
    FROM trades GROUP BY {{keys}}, agent, {column}
    ORDER BY {{keys}}, agent, {column}
    """


def _risk_fraction(column: str) -> str:
    """A risk fraction stored as a bare JSON number or as {"risk_fraction": x}."""
    return (f"coalesce(TRY_CAST({column} ->> '$.risk_fraction' AS DOUBLE), "
            f"TRY_CAST({column} ->> '$' AS DOUBLE))")


def _evidence(field: str) -> str:
    return f"TRY_CAST(evidence ->> '$.{field}' AS DOUBLE) AS {field}"


VIEWS: tuple[View, ...] = (
    View("stats", "trades, win rate, avg win/loss and Kelly edge per run and agent",
         _trade_stats("")),
    View("stats_by_symbol", "the same statistics per symbol", _trade_stats(", symbol")),
    View("state_performance", "trades, win rate and pnl by the machine state at entry",
         _performance_by("state")),
    View("mode_performance", "trades, win rate and pnl by mode (normal, window, epsilon, explore)",
         _performance_by("mode")),
    View("drawdown", "every equity mark with its running peak and drawdown from it", """
    SELECT {keys}, ts, agent, equity, peak,
        CASE WHEN peak > 0 THEN 1 - equity / peak END AS drawdown, state
    FROM (SELECT *, max(equity) OVER (PARTITION BY {keys}, agent ORDER BY ts) AS peak
          FROM equity)
    ORDER BY {keys}, agent, ts
    """),
    View("max_drawdown", "the deepest drawdown per run and agent, and when it happened", """
    SELECT {keys}, agent, drawdown AS max_drawdown, ts AS max_drawdown_ts, peak, equity
    FROM drawdown
    QUALIFY row_number() OVER (
        PARTITION BY {keys}, agent ORDER BY drawdown DESC NULLS LAST, ts) = 1
    ORDER BY {keys}, agent
    """),
    View("time_in_state", "bars and simulated ms spent in each state, from the transitions", """
    WITH bounds AS (
        SELECT {keys}, agent, min(ts) AS first_ts, max(ts) AS last_ts,
            arg_min(state, (ts, wall_ts)) AS first_state
        FROM equity GROUP BY {keys}, agent),
    moves AS (
        SELECT {keys}, agent, ts, source, dest,
            row_number() OVER (PARTITION BY {keys}, agent ORDER BY ts, wall_ts) AS seq
        FROM transitions),
    segments AS (
        SELECT {keys}, agent, first_ts AS start_ts, 0 AS seq,
            coalesce(source, first_state) AS state
        FROM bounds LEFT JOIN (SELECT * FROM moves WHERE seq = 1) USING ({keys}, agent)
        UNION ALL
        SELECT {keys}, agent, ts AS start_ts, seq, dest AS state
        FROM moves JOIN bounds USING ({keys}, agent) WHERE ts <= last_ts),
    spans AS (
        SELECT {keys}, agent, state, last_ts,
            greatest(start_ts, first_ts) AS span_start,
            greatest(coalesce(lead(start_ts) OVER w, last_ts), first_ts) AS span_end,
            lead(start_ts) OVER w IS NULL AS is_last
        FROM segments JOIN bounds USING ({keys}, agent)
        WINDOW w AS (PARTITION BY {keys}, agent ORDER BY seq)),
    counted AS (
        SELECT l.*, l.span_end - l.span_start AS ms,
            (SELECT count(*) FROM equity r WHERE {on} AND r.ts >= l.span_start
                AND (r.ts < l.span_end OR (l.is_last AND r.ts = l.span_end))) AS bars
        FROM spans l)
    SELECT {keys}, agent, state, sum(bars) AS bars, sum(ms) AS ms,
        sum(ms) / nullif(sum(sum(ms)) OVER (PARTITION BY {keys}, agent), 0) AS share
    FROM counted GROUP BY {keys}, agent, state
    ORDER BY {keys}, agent, min(span_start)
    """),
    View("adjustments_timeline", "every learning adjustment in time order: what, from, to, why", """
    SELECT {keys}, ts, agent, kind, before, after, reason, evidence
    FROM adjustments ORDER BY {keys}, ts, wall_ts
    """),
    View("params", "every parameter set the optimiser put in force (promotion or rollback): version, "
         "the version it replaced, the parameters, and the hashed file in RUN/params", """
    SELECT {keys}, ts, agent, kind, after ->> '$.version' AS version, before ->> '$.version' AS replaced,
        after -> '$.params' AS params, evidence ->> '$.file' AS file, evidence ->> '$.sha256' AS sha256, reason
    FROM adjustments WHERE kind IN ('param_promotion', 'param_rollback') ORDER BY {keys}, ts, wall_ts
    """),
    View("kelly", "Kelly risk changes with their inputs (p, b, f*, regime factor, cap) as columns", f"""
    SELECT {{keys}}, ts, agent, kind, {_evidence("p")}, {_evidence("b")}, {_evidence("f_star")},
        {_evidence("regime_factor")}, {_evidence("cap")},
        {_risk_fraction("before")} AS risk_fraction_before,
        {_risk_fraction("after")} AS risk_fraction_after, reason
    FROM adjustments WHERE kind IN ('kelly_update', 'risk_fraction') ORDER BY {{keys}}, ts, wall_ts
    """),
    View("breaker", "transitions into or out of the states the machine tags `breaker`", """
    SELECT {keys}, ts, agent, source, dest, trigger, reason, evidence
    FROM transitions l
    WHERE EXISTS (SELECT 1 FROM state_tags r
                  WHERE {on} AND r.tag = 'breaker' AND r.state IN (l.source, l.dest))
    ORDER BY {keys}, ts, wall_ts
    """),
    View("funding_summary", "funding payments, paid (negative), received and net per symbol", """
    SELECT {keys}, agent, symbol, count(*) AS payments,
        coalesce(sum(amount) FILTER (WHERE amount < 0), 0) AS paid,
        coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS received,
        sum(amount) AS net
    FROM funding GROUP BY {keys}, agent, symbol
    ORDER BY {keys}, agent, symbol
    """),
    View("regimes", "regime changes in time order", """
    SELECT {keys}, ts, agent,
        coalesce(before ->> '$.regime', before ->> '$') AS from_regime,
        coalesce(after ->> '$.regime', after ->> '$') AS to_regime, reason, evidence
    FROM adjustments WHERE kind = 'regime_change' ORDER BY {keys}, ts, wall_ts
    """),
    View("decisions_by_model", "decisions, passes and mean probability per model version", """
    SELECT {keys}, agent, model_version, count(*) AS decisions,
        count(*) FILTER (WHERE passed) AS passed,
        count(*) FILTER (WHERE passed) / count(*) AS pass_rate,
        avg(probability) AS avg_probability
    FROM decisions GROUP BY {keys}, agent, model_version
    ORDER BY {keys}, agent, model_version
    """),
    View("model_hit_rates", "out-of-sample hit rate (p > 0.5 vs outcome), log-loss and AUC of the ensemble "
         "and each member, against a coin flip, the majority outcome and always predicting the base rate", """
    WITH scored AS (
        UNPIVOT (SELECT {keys}, agent, outcome, probability AS ensemble, p_attention_mlp AS attention_mlp,
                        p_lstm AS lstm, p_cnn AS cnn, p_transformer AS transformer
                 FROM predictions WHERE outcome IS NOT NULL)
        ON ensemble, attention_mlp, lstm, cnn, transformer INTO NAME model VALUE p),
    ranked AS (  -- rank of p among the model's predictions, ties averaged (Mann-Whitney)
        SELECT *, rank() OVER (PARTITION BY {keys}, agent, model ORDER BY p)
                  + (count(*) OVER (PARTITION BY {keys}, agent, model, p) - 1) / 2 AS p_rank
        FROM scored),
    rates AS (
        SELECT {keys}, agent, model, count(*) AS predictions,
            avg(CASE WHEN (p > 0.5) = (outcome = 1) THEN 1.0 ELSE 0.0 END) AS hit_rate,
            avg(outcome) AS base_rate,
            -avg(outcome * ln(greatest(p, 1e-12)) + (1 - outcome) * ln(greatest(1 - p, 1e-12))) AS log_loss,
            avg(p) AS mean_probability,
            count(*) FILTER (WHERE outcome = 1) AS wins, count(*) FILTER (WHERE outcome = 0) AS losses,
            sum(p_rank) FILTER (WHERE outcome = 1) AS win_ranks
        FROM ranked GROUP BY {keys}, agent, model)
    SELECT {keys}, agent, model, predictions, hit_rate, 0.5 AS coin_flip,
        greatest(base_rate, 1 - base_rate) AS majority_rate, log_loss, base_rate,
        -(base_rate * ln(greatest(base_rate, 1e-12)) + (1 - base_rate) * ln(greatest(1 - base_rate, 1e-12)))
            AS base_rate_log_loss,
        mean_probability,
        (win_ranks - wins * (wins + 1) / 2) / nullif(wins * losses, 0) AS auc
    FROM rates
    ORDER BY {keys}, agent, model
    """),
    View("feature_importance", "per model version, each feature's attention weight and permutation importance "
         "(held-out log-loss lost when it is shuffled) per member, its rank, and its change from the version before",
         """
    WITH keyed AS (
        SELECT {keys}, agent, ts, version, status, metrics, unnest(json_keys(metrics)) AS key FROM models),
    importance AS (
        SELECT {keys}, agent, ts, version, status,
            string_split(key, '.')[2] AS method,
            CASE WHEN string_split(key, '.')[2] = 'attention' THEN 'attention_mlp'
                 ELSE string_split(key, '.')[3] END AS model,
            string_split(key, '.')[-1] AS feature,
            TRY_CAST(json_extract(metrics, '/' || key) AS DOUBLE) AS importance
        FROM keyed WHERE key LIKE 'importance.%')
    SELECT {keys}, agent, ts, version, status, method, model, feature, importance,
        rank() OVER (PARTITION BY {keys}, agent, version, method, model ORDER BY importance DESC) AS rank,
        importance - lag(importance) OVER (PARTITION BY {keys}, agent, method, model, feature ORDER BY ts, version)
            AS change
    FROM importance
    ORDER BY {keys}, agent, ts, version, method, model, rank
    """),
    View("summary", "one line per run and agent: trade stats, return and max drawdown", """
    WITH marks AS (
        SELECT {keys}, agent, arg_min(equity, (ts, wall_ts)) AS first_equity,
            arg_max(equity, (ts, wall_ts)) AS last_equity
        FROM equity GROUP BY {keys}, agent),
    agents AS (
        SELECT {keys}, agent FROM marks UNION SELECT {keys}, agent FROM stats)
    SELECT {keys}, agent, coalesce(trades, 0) AS trades, coalesce(wins, 0) AS wins,
        coalesce(losses, 0) AS losses, win_rate, avg_win, avg_loss, win_loss_ratio, kelly_edge,
        net_pnl, fees, funding, first_equity, last_equity,
        last_equity / nullif(first_equity, 0) - 1 AS "return", max_drawdown, max_drawdown_ts
    FROM agents
    LEFT JOIN stats USING ({keys}, agent)
    LEFT JOIN marks USING ({keys}, agent)
    LEFT JOIN max_drawdown USING ({keys}, agent)
    ORDER BY {keys}, agent
    """),
    # ratchet-ablate names an ablated agent `<agent>~<arm>` (machine/ablation); the full agent keeps its name.
    View("learning_effect", "ablation runs (ratchet-ablate): each arm's return, Sharpe, max drawdown and trades "
         "beside the full agent's on the same market window, data and seed, and the effect (full minus arm)", """
    WITH arms AS (
        SELECT {keys}, agent, split_part(agent, '~', 1) AS base_agent,
            coalesce(nullif(split_part(agent, '~', 2), ''), 'full') AS arm,
            config ->> '$.market.name' AS market, coalesce(config ->> '$.market.start', '') AS window_start,
            coalesce(config ->> '$.market.end', '') AS window_end, coalesce(data_fingerprint, '') AS data, seed
        FROM runs),
    steps AS (
        SELECT {keys}, agent, equity / nullif(lag(equity) OVER w, 0) - 1 AS r, ts - lag(ts) OVER w AS dt
        FROM equity WINDOW w AS (PARTITION BY {keys}, agent ORDER BY ts, wall_ts)),
    ratios AS (  -- annualised as the report's Sharpe: mean / sd x sqrt(marks a year of 365.25 days)
        SELECT {keys}, agent, avg(r) / nullif(stddev_samp(r), 0) * sqrt(31557600000 / median(dt)) AS sharpe
        FROM steps WHERE r IS NOT NULL GROUP BY {keys}, agent),
    figures AS (
        SELECT arms.*, s."return", ratios.sharpe, s.max_drawdown, s.trades
        FROM arms JOIN summary s USING ({keys}, agent) LEFT JOIN ratios USING ({keys}, agent)),
    full_agent AS (
        SELECT base_agent, market, window_start, window_end, data, seed, "return" AS full_return,
            sharpe AS full_sharpe, max_drawdown AS full_max_drawdown, trades AS full_trades
        FROM figures WHERE arm = 'full'),
    ablated AS (  -- the windows some arm ran on: a full run elsewhere is no part of an ablation
        SELECT DISTINCT base_agent, market, window_start, window_end, data, seed FROM figures WHERE arm <> 'full')
    SELECT {keys}, base_agent AS agent, arm, market, nullif(window_start, '') AS window_start,
        nullif(window_end, '') AS window_end,
        "return", full_return, full_return - "return" AS return_effect,
        sharpe, full_sharpe, full_sharpe - sharpe AS sharpe_effect,
        max_drawdown, full_max_drawdown, full_max_drawdown - max_drawdown AS max_drawdown_effect,
        trades, full_trades, full_trades - trades AS trades_effect
    FROM figures JOIN ablated USING (base_agent, market, window_start, window_end, data, seed)
    LEFT JOIN full_agent USING (base_agent, market, window_start, window_end, data, seed)
    ORDER BY base_agent, market, window_start, arm <> 'full', arm, {keys}
    """),
)

VIEW_NAMES: tuple[str, ...] = tuple(view.name for view in VIEWS)


def view_sql(view: View, run_keys: Sequence[str] = ("run_id",)) -> str:
    """A view's SELECT for the given run keys."""
    keys = ", ".join(run_keys)
    on = " AND ".join(f"l.{key} = r.{key}" for key in (*run_keys, "agent"))
    return view.template.format(keys=keys, on=on)


def is_time_column(name: str) -> bool:
    """Simulated times are named `ts` or `*_ts`: epoch ms in the base tables, TIMESTAMP (UTC) in the views."""
    return name == "ts" or name.endswith("_ts")


_EPOCH_MS_TYPES = ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT")


def create_views(con: duckdb.DuckDBPyConnection, *, run_keys: Sequence[str] = ("run_id",)) -> None:
    """Create every view as a TEMP view over the base tables visible to `con`.

    The templates compute on the base tables' epoch milliseconds; each view then shows its time
    columns (`is_time_column`) as TIMESTAMP, in UTC. A view built on another view finds them
    converted already and leaves them as they are.
    """
    for view in VIEWS:
        sql = view_sql(view, run_keys)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view.name} AS {sql}")
        times = [name for name, kind, *_ in con.execute(f"DESCRIBE {view.name}").fetchall()
                 if is_time_column(name) and kind in _EPOCH_MS_TYPES]
        if times:
            replace = ", ".join(f'epoch_ms("{name}") AS "{name}"' for name in times)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view.name} AS SELECT * REPLACE ({replace}) FROM ({sql})")
