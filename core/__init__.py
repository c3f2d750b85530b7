"""Ratchet's shared vocabulary: the bottom layer every other package imports.

It imports nothing of ours. ``components/`` never imports ``machine/``; ``ledger/`` imports
neither ``machine/`` nor ``components/``; all of them meet here:

    errors      the error tree (who must act on what)
    validation  pydantic errors as one message naming key, value and what is allowed
    market      bars, funding, mark candles: the arrays every component reads
    records     orders, fills, positions, trades, funding payments, a bar's exchange events
    facts       the in-memory ledger facts guards and sizers read
    component   the component base, its stages, the Decision and the context it may use
    protocols   Feed, Exchange and Clock: what changes between replay, paper and live
"""
