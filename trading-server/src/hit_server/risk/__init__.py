"""The risk engine, pure functions without I/O: whether a signal may trade and how big (`engine`), the
size from the risk and the instrument (`sizing`), and the order prices and targets (`orders`)."""
