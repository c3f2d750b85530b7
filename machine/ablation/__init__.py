"""``ratchet-ablate``: which learning loops help. Each loop switched off in turn (config only, loops.py),
each filter and Kelly replaced by a placebo (placebo.py, shares.py), replayed over walk-forward
stretches (stretches.py) as Hydra multiruns (runner.py), compared with the full agent by a paired
block bootstrap (bootstrap.py) and a verdict (verdict.py)."""
