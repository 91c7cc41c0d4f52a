"""What the server remembers: the database (`db`), signals and their orders (`journal`), the symbol claims
that keep one trade per symbol (`claims`), the monitor's trades and their leases (`trade_book`,
`trade_lease`) and the event feed (`events`)."""
