"""Losant's resource-job API on jobport: an application is a project, a resource job is a job
with `foreach`, an execution log is an execution with its iteration summary; ids are the
24-hex object ids of jobport's records (domain/ids.object_id). Bodies and mapping in
`schema.py`, routes and errors in `routes.py`."""

from jobport.api.vendors.losant.routes import router

__all__ = ["router"]
