"""What type checkers see of a plain, a raw and a sync call: checked by mypy --strict and
by pyright (basedpyright) in ``nox -s typecheck``, each ``assert_type`` an error when it
does not hold. (``tests/test_public_surface.py`` also runs mypy's ``reveal_type`` on a
user's script, and that an unknown argument such as ``extra_body`` on a GET is flagged.)
"""

from __future__ import annotations

from typing_extensions import assert_type

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.models import (
    APIResponse,
    DatasetSummary,
    DeploymentDetail,
    GetCompletionsFromDeploymentResponseBody,
    TrainingJobSummary,
)


def sync_calls(client: EmissaryClient) -> None:
    assert_type(client.deployments.get(project_id="p", deployment_id="d"), DeploymentDetail)
    assert_type(
        client.deployments.with_raw_response.get(project_id="p", deployment_id="d"),
        APIResponse[DeploymentDetail],
    )
    assert_type(client.training_jobs.list(project_id="p"), list[TrainingJobSummary])
    assert_type(client.projects.delete(project_id="p", missing_ok=True), None)
    assert_type(
        client.deployments.completions.create(
            project_id="p", deployment_id="d", request_body={"prompt": "a"}
        ),
        GetCompletionsFromDeploymentResponseBody,
    )


async def async_calls(client: AsyncEmissaryClient) -> None:
    assert_type(await client.deployments.get(project_id="p", deployment_id="d"), DeploymentDetail)
    assert_type(
        await client.datasets.with_raw_response.list(project_id="p"),
        APIResponse[list[DatasetSummary]],
    )
    raw = await client.deployments.completions.with_raw_response.create(
        project_id="p", deployment_id="d", request_body={"prompt": "a"}
    )
    assert_type(raw, APIResponse[GetCompletionsFromDeploymentResponseBody])
    assert_type(raw.parse(), GetCompletionsFromDeploymentResponseBody)
