"""Retention: how long ended runs and their logs are kept, a job's policy over the server's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, model_validator

from jobport.domain.wire import Count, Wire

MAX_DAYS = 36_500  # a hundred years: more is "forever", which is 0
MAX_RUNS = 100_000_000

Days = Annotated[Count, Field(ge=0, le=MAX_DAYS)]
Runs = Annotated[Count, Field(ge=0, le=MAX_RUNS)]


class Retention(Wire):
    """A job's `retention`: each field left out takes the server's setting; 0 keeps forever
    (days, logDays) or sets no limit (runs). A run's log never outlives the run, so a
    logDays above days is refused rather than silently shortened."""

    days: Days | None = None
    runs: Runs | None = None
    log_days: Days | None = None

    @model_validator(mode="after")
    def _logs_within_the_run(self) -> Retention:
        if self.days and self.log_days and self.log_days > self.days:
            raise ValueError(
                f"logDays ({self.log_days}) is longer than days ({self.days}): a run's log "
                "goes with the run; leave logDays out or make it at most days"
            )
        return self


@dataclass(frozen=True, slots=True)
class Policy:
    """The policy in force for one job: days and log_days 0 keep forever, runs 0 no limit."""

    days: int
    runs: int
    log_days: int

    def run_cutoff(self, now: dt.datetime) -> dt.datetime | None:
        """Runs that ended before this go (by age); None: age removes none."""
        return now - dt.timedelta(days=self.days) if self.days else None

    def log_cutoff(self, now: dt.datetime) -> dt.datetime | None:
        """Logs of runs that ended before this go while the run stays; None: none do apart
        from their run's."""
        if not self.log_days or (self.days and self.log_days >= self.days):
            return None
        return now - dt.timedelta(days=self.log_days)


def policy(server: Policy, job: Retention | None) -> Policy:
    """The job's own values over the server's."""
    if job is None:
        return server
    return Policy(
        days=server.days if job.days is None else job.days,
        runs=server.runs if job.runs is None else job.runs,
        log_days=server.log_days if job.log_days is None else job.log_days,
    )


def later(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    """The later of two cutoffs (the one that removes more); None counts as no cutoff."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
