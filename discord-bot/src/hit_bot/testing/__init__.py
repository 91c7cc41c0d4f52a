"""Fakes with behaviour for tests, benchmarks and demos: a fake Discord and a fake trading server.

Both bind only to 127.0.0.1 and never reach the internet.
"""
