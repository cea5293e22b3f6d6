"""The domain: plain data and pure functions, no I/O."""
