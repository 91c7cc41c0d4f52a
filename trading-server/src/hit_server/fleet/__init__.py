"""The fleet (issue #19): one signal copied to every enabled member account, each at most once.

A signal is accepted once by the API server, as for one account; `fanout.py` then records one job per
enabled account and defers it on the job queue (`queue.py`: procrastinate on the journal's PostgreSQL),
one queue per egress group. Workers (`python -m hit_server worker --egress <group>`, `worker.py`), as
many processes on as many machines as wanted, take the jobs of their group and trade each account with
the single-account path unchanged (`traders.py`): the account's own journal (a PostgreSQL schema), its
keys, its risk settings, its equity. Why this shape, and what is guaranteed across crashes: ARCHITECTURE.md,
"The fleet".
"""
