"""Celonis's data-job API (EMS data integration, as its docs and pycelonis call it) on jobport.

A data pool is a project and a data job is a job, each named by id or name; a run is an
execution, whose mode FULL or DELTA is jobport's `full` or `delta`. The routes are the
documented execute (`/integration/api/v2/data-pools/...`) and job status, and those
pycelonis 2.x uses (`pycelonis/service/integration/service.py`: execute, cancel, the pool's
job statuses, a job's executions, an execution's items and their log). Answers and errors
are in Celonis's shapes; the rights are the native API's scopes in the project.
"""

from jobport.api.vendors.celonis.routes import router

__all__ = ["router"]
