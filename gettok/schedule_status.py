"""What `gettok status` shows: the next scheduled runs of every deployment on the Prefect server.

Read from the server named by PREFECT_API_URL; with none set there are no schedules to show
(a temporary server has no deployments), so nothing is started.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel


class ScheduledRuns(BaseModel):
    deployment: str  # flow/deployment, as `prefect deployment run` names it
    schedules: list[str]  # the cron or interval of each active schedule
    paused: bool
    next_runs: list[datetime]  # expected start times (UTC) of the runs already scheduled


def configured_api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def next_scheduled_runs(per_deployment: int = 3) -> list[ScheduledRuns]:
    """Each deployment with its schedules and its next `per_deployment` scheduled runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    found: list[ScheduledRuns] = []
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        for deployment in sorted(client.read_deployments(), key=lambda d: d.name):
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    )
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=per_deployment,
            )
            found.append(
                ScheduledRuns(
                    deployment=f"{flows.get(deployment.flow_id, '?')}/{deployment.name}",
                    schedules=[_describe(s.schedule) for s in deployment.schedules if s.active],
                    paused=bool(deployment.paused),
                    next_runs=[
                        r.expected_start_time.astimezone(UTC) for r in runs if r.expected_start_time
                    ],
                )
            )
    return found


def _describe(schedule) -> str:
    if getattr(schedule, "cron", None):
        return f"cron {schedule.cron} {schedule.timezone or 'UTC'}"
    if getattr(schedule, "interval", None):
        return f"every {schedule.interval}"
    return str(schedule)
