"""Job use-cases: validate definitions fully before anything is stored."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from jobport.domain.clock import utcnow
from jobport.domain.executions import Execution
from jobport.domain.ids import new_id
from jobport.domain.jobs import Job, JobSpec
from jobport.domain.pages import Page
from jobport.engine import steps as step_kinds
from jobport.engine.templating import syntax_errors
from jobport.errors import Conflict, Invalid, NotFound, error_details, invalid
from jobport.services import schedules as schedule_service
from jobport.services.runtime import Runtime
from jobport.store import executions as execution_store
from jobport.store import jobs as job_store
from jobport.store import projects as project_store


def sort_keys() -> list[str]:
    """What a job listing may be sorted by (a leading '-' reverses it)."""
    return sorted(job_store.SORTS)


def step_kinds_known() -> list[str]:
    """The step kinds a job may use."""
    return sorted(step_kinds.kinds())


def parse_spec(data: dict[str, Any]) -> JobSpec:
    """Turn a job definition into a JobSpec, or raise Invalid naming every problem."""
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        details = error_details(exc.errors(include_url=False))
        raise invalid(details, what="invalid job definition", code="invalid_job") from None
    problems: list[dict[str, Any]] = []
    for index, step in enumerate(spec.steps):
        try:
            step_kinds.validate(step.kind, step.config)
        except ValueError as exc:
            problems.append(
                {
                    "field": f"steps.{index}.config"
                    if "kind" not in str(exc)
                    else f"steps.{index}.kind",
                    "reason": str(exc),
                    "step": step.name,
                }
            )
        for error in syntax_errors(step.config):
            problems.append(
                {
                    "field": f"steps.{index}.config",
                    "reason": f"template: {error}",
                    "step": step.name,
                }
            )
    source = spec.foreach.source if spec.foreach else None
    for kind in ("sql", "http"):
        config = getattr(source, kind, None)
        if config is None:
            continue
        field = f"foreach.source.{kind}"
        try:
            step_kinds.validate(kind, config)
        except ValueError as exc:
            problems.append({"field": field, "reason": str(exc), "step": field})
        for error in syntax_errors(config):
            problems.append({"field": field, "reason": f"template: {error}", "step": field})
    if problems:
        first = problems[0]
        raise Invalid(
            f"invalid job definition: step {first['step']!r}: {first['reason']}",
            code="invalid_job",
            details=problems,
        )
    return spec


def _last(row: dict[str, Any] | None) -> Execution | None:
    return Execution.from_row(row) if row is not None else None


def create(rt: Runtime, project_ref: str, data: dict[str, Any]) -> Job:
    """Validate `data` (a job definition, camelCase or snake_case) whole and store it."""
    spec = parse_spec(data)
    now = utcnow()
    with rt.db.write() as conn:
        project = project_store.get(conn, project_ref)
        row = {
            "id": new_id(),
            "project_id": project["id"],
            "name": spec.name,
            "spec": spec.wire(),
            "created_at": now,
            "updated_at": now,
        }
        job_store.create(conn, row)
    return Job.from_row(row, spec=spec)


def project_of(rt: Runtime, job_id: str) -> str:
    """The id of the project that holds the job with this id (for routes that name a job by
    its id alone, as Loome's scripts do: ids are unique across projects, names are not)."""
    with rt.db.read() as conn:
        job = job_store.get_by_id(conn, job_id)
    if job is None:
        raise NotFound(
            f"no job with id {job_id!r} (a job's `id`; by name: /api/v1/projects/{{project}}"
            "/jobs/{name})",
            code="job_not_found",
        )
    return str(job["project_id"])


def get(rt: Runtime, project_ref: str, job_ref: str) -> Job:
    """The job with its newest run and its schedules."""
    with rt.db.read() as conn:
        project = project_store.get(conn, project_ref)
        job = job_store.get(conn, project["id"], job_ref)
        last = execution_store.latest_for_jobs(conn, [job["id"]]).get(job["id"])
        schedules = schedule_service.for_job(conn, job["id"])
    return Job.from_row(job, last_execution=_last(last), schedules=tuple(schedules))


def list_page(
    rt: Runtime,
    project_ref: str,
    *,
    name_contains: str | None = None,
    label: str | None = None,
    sort: str = "name",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of Jobs, each with its newest run (not its schedules)."""
    if sort.lstrip("-") not in job_store.SORTS:
        raise Invalid(
            f"sort must be one of {sorted(job_store.SORTS)} (prefix '-' to reverse)",
            code="invalid_sort",
        )
    label_pair = None
    if label is not None:
        key, sep, value = label.partition(":")
        if not sep or not key:
            raise Invalid("label filter must be 'key:value'", code="invalid_filter")
        label_pair = (key, value)
    with rt.db.read() as conn:
        project = project_store.get(conn, project_ref)
        page = job_store.list_page(
            conn,
            project["id"],
            name_contains=name_contains,
            label=label_pair,
            sort=sort,
            cursor=cursor,
            limit=limit,
        )
        latest = execution_store.latest_for_jobs(conn, [j["id"] for j in page.items])
    jobs = [Job.from_row(j, last_execution=_last(latest.get(j["id"]))) for j in page.items]
    return Page(jobs, page.next_cursor)


def patch(rt: Runtime, project_ref: str, job_ref: str, changes: dict[str, Any]) -> Job:
    """Merge `changes` (camelCase top-level fields) into the definition and re-validate."""
    with rt.db.read() as conn:
        project = project_store.get(conn, project_ref)
        job = job_store.get(conn, project["id"], job_ref)
    # Accept snake_case field names too, as POST does, by mapping them to the stored aliases.
    aliases = {name: field.alias or name for name, field in JobSpec.model_fields.items()}
    spec = parse_spec({**job["spec"], **{aliases.get(k, k): v for k, v in changes.items()}})
    with rt.db.write() as conn:
        current = job_store.get(conn, project["id"], job["id"])
        if current["updated_at"] != job["updated_at"]:
            raise Conflict(
                "the job changed while this update was prepared; retry", code="concurrent_update"
            )
        if spec.wire() != current["spec"]:
            job_store.update_fields(
                conn, job["id"], {"name": spec.name, "spec": spec.wire(), "updated_at": utcnow()}
            )
    return get(rt, project["id"], job["id"])


def delete(rt: Runtime, project_ref: str, job_ref: str) -> None:
    with rt.db.write() as conn:
        project = project_store.get(conn, project_ref)
        job = job_store.get(conn, project["id"], job_ref)
        active = execution_store.active_for_job(conn, job["id"])
        if active:
            raise Conflict(
                f"job {job['name']!r} has {len(active)} execution(s) queued or running; "
                "cancel them first",
                code="executions_active",
                details={"executionId": active[0]["id"]},
            )
        job_store.remove(conn, job["id"])
