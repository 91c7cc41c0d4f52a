"""Talking to BloFin: the REST client (`blofin_client`), request signing (`blofin_auth`), the error tree
(`blofin_errors`), wire models, the private WebSocket, rate limits, instruments, the start-up check of the
account (`exchange_check`) and the paper wiring that puts the simulator behind the same client (`paper`)."""
