"""Following each placed trade to its end: the position monitor (`monitor`) runs passes (`passes`) that
keep the stop (`stops`), place the targets (`take_profits`), read the result (`pnl`), sweep orphans
(`orphans`) and relay events to Discord (`notify`)."""
