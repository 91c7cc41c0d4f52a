"""Discord I/O only: each cog turns Discord events into calls on plain modules and shows the results."""
