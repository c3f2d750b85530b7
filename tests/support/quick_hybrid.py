"""The hybrid agent on 5m BTC and ETH made small enough for a test's learning timeline: two-week training
windows and retrains, one epoch on at most 1,500 samples, one thread, ensemble weights every 96 outcomes.
Tests add their own window (``market.start``, ``market.end``)."""

GATE = "agent.components.ml_gate"
QUICK_HYBRID = (
    "experiment=hybrid_5m",
    "agent.components.regime.vol_lookback=2016",
    f"{GATE}.retrain_every_days=14",
    f"{GATE}.retrainer.window_days=14",
    f"{GATE}.retrainer.training.epochs=1",
    f"{GATE}.retrainer.training.max_samples=1500",
    f"{GATE}.retrainer.training.threads=1",
    f"{GATE}.retrainer.ensemble.cadence=96",
)

# The hybrid agent without its ML gate (and optimiser): it takes every signal the filters let through.
RULE_BASED = (
    "++agent.optimise=null",
    "agent.machine.states.conservative.components=[features,regime,signal,regime_gate,atr_filter,fixed_risk,atr_exits]",
    "agent.machine.states.kelly_active.components=[features,regime,signal,regime_gate,atr_filter,kelly,atr_exits]",
    "agent.machine.states.exploring.components=[features,regime,signal,atr_filter,explore,atr_exits]",
)
