"""What type checkers see of a batch's results: checked by mypy --strict and by pyright
(basedpyright) in ``nox -s typecheck``, each ``assert_type`` an error when it does not hold.

``if result.ok:`` narrows under mypy; pyright narrows a union on one of its members only
through ``is`` or ``==`` (by design), so ``if result.ok is True:`` (or ``if result.error
is None:``) is the spelling that narrows under both.
"""

from __future__ import annotations

from typing_extensions import assert_type

from emissary import AsyncEmissaryClient, EmissaryClient
from emissary.errors import EmissaryError
from emissary.models import (
    BatchFailure,
    BatchOutcome,
    BatchSuccess,
    GetChatCompletionsFromDeploymentResponseBody,
    GetClassificationFromDeploymentResponseBody,
    GetCompletionsFromDeploymentResponseBody,
    GetEmbeddingsFromDeploymentResponseBody,
)


def completions(client: EmissaryClient) -> None:
    results = client.deployments.completions.batch(
        project_id="p", deployment_id="d", requests=[{"prompt": "a"}]
    )
    assert_type(results, list[BatchOutcome[GetCompletionsFromDeploymentResponseBody]])
    for result in results:
        if result.ok is True:
            assert_type(result, BatchSuccess[GetCompletionsFromDeploymentResponseBody])
            assert_type(result.result, GetCompletionsFromDeploymentResponseBody)
            assert_type(result.completion, GetCompletionsFromDeploymentResponseBody)
        else:
            assert_type(result, BatchFailure[GetCompletionsFromDeploymentResponseBody])
            assert_type(result.error, EmissaryError)
        if isinstance(result, BatchSuccess):
            assert_type(result.result, GetCompletionsFromDeploymentResponseBody)


def embeddings(client: EmissaryClient) -> None:
    for result in client.deployments.embeddings.iter_batch(
        project_id="p",
        deployment_id="d",
        requests=[{"source_sentence": "a", "target_sentence": "b"}],
    ):
        if result.error is None:
            assert_type(result.result, GetEmbeddingsFromDeploymentResponseBody)
        else:
            assert_type(result.error, EmissaryError)


async def chat_and_classification(client: AsyncEmissaryClient) -> None:
    chats = await client.deployments.chat.completions.batch(
        project_id="p", deployment_id="d", requests=[{"messages": []}]
    )
    for chat in chats:
        if chat.ok is True:
            assert_type(chat.result, GetChatCompletionsFromDeploymentResponseBody)
    async for row in client.deployments.classification.iter_batch(
        project_id="p", deployment_id="d", requests=[{"source_sentence": "a"}]
    ):
        if row.ok is False:
            assert_type(row.error, EmissaryError)
        else:
            assert_type(row.result, GetClassificationFromDeploymentResponseBody)
