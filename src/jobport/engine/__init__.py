"""The engine: dispatch executions to workers and run their steps."""
