"""ML ensemble of the hybrid agent: causal features, four torch members, combiners, retraining.

features -> dataset (resolved samples at 'now') -> training (one member) -> ensemble (weights or
stacking) -> version (members + combiner) -> registry (run-folder store) -> retrainer (rolling
window, champion gate) -> scoring (batched causal inference over a live span).
"""
