"""The weekly parameter optimiser: propose, canary, promote, roll back (DESIGN invariant 4).

``space``      the declared search space (``agent.optimise``), checked against the agent's components
``objective``  what a set of parameters earned over a stretch of bars, net of fees, as one number
``backtest``   a muted agent on a simulated exchange: a trial on a past window, or a shadow of the live agent
``study``      an Optuna study (seeded TPE) over a window, on a storage several workers may share
``canary``     two shadows on the same bars (challenger and champion) and the verdict between them
``promotion``  the promoted parameter sets: versioned, hashed files in the run folder, with history
``job``        the schedule on the agent's clock that ties them together (replay, paper, live)
``cli``        ``ratchet-optimise``: one study over any window, for users
"""
