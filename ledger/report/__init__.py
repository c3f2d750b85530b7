"""The run report: one self-contained HTML page per run (`ratchet-report`), a comparison page for
several, and the trading figures a freqtrade user reads first (`metrics.trading_metrics`)."""
