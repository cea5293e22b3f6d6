"""Services: the use-cases every face calls (projects, jobs, executions)."""
