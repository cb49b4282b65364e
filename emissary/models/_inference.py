"""Inference on a deployment: completions, chat, embeddings and classification.

Request bodies are strict (unknown fields refused, ranges as `msgspec.Meta` constraints,
checked before anything is sent); results are lenient (fields may be absent, unknown ones
are ignored). Each body may also be a plain dict, typed by its ``...TypedDict``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal, TypedDict

import msgspec

from .._untrack import untrack

if TYPE_CHECKING:
    from ._compat import Role

_FINITE = sys.float_info.max
INT32_MAX = 2**31 - 1
"""The largest ``int32`` (the spec's format for ``max_new_tokens``)."""
INT64_MAX = 2**63 - 1
"""The largest integer the API takes where the spec gives no format (a signed 64-bit one)."""

Temperature = Annotated[
    float, msgspec.Meta(ge=0, le=_FINITE, description="sampling temperature, >= 0")
]
TopP = Annotated[float, msgspec.Meta(ge=0, le=1, description="nucleus cut-off, in [0, 1]")]
TopK = Annotated[
    int, msgspec.Meta(ge=0, le=INT64_MAX, description="keep the k most likely tokens, >= 0")
]
MaxNewTokens = Annotated[
    int, msgspec.Meta(ge=1, le=INT32_MAX, description="upper bound on new tokens, an int32 >= 1")
]
NoRepeatNgramSize = Annotated[
    int, msgspec.Meta(ge=0, le=INT64_MAX, description="n-gram size never repeated")
]


class _Input(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A request body: unknown fields refused, fields left as None not sent."""


class _SamplingDict(TypedDict, total=False):
    temperature: float | None
    max_new_tokens: int | None
    top_p: float | None
    top_k: int | None
    no_repeat_ngram_size: int | None
    do_sample: bool | None


class _Output(msgspec.Struct, kw_only=True, gc=False):
    """A response body: every field may be absent; fields the server adds are ignored.

    Not tracked by Python's cycle collector (msgspec's ``gc=False``): a decoded answer
    holds only what its JSON held and never forms a reference cycle (unless you make one
    by putting a result inside itself), so a batch holding thousands of results costs the
    collector nothing for them (nor for the lists of floats inside embeddings, which are
    untracked too: `GetEmbeddingsFromDeploymentEmbeddings`)."""


# --- completions --------------------------------------------------------------------------


class GetCompletionsFromDeploymentRequestBody(_Input, kw_only=True):
    """The prompt and generation settings of one completion request.

    Only `prompt` is required; settings left as ``None`` are not sent, so the deployment's
    own defaults apply. (Fields in the spec's order, which is the JSON's.)
    """

    prompt: str
    """The input prompt."""
    temperature: Temperature | None = None
    """Sampling temperature, a finite number >= 0."""
    max_new_tokens: MaxNewTokens | None = None
    """Upper bound on the number of generated tokens, an integer from 1 to 2**31 - 1."""
    top_p: TopP | None = None
    """Nucleus sampling: keep tokens up to this cumulative probability, in [0, 1]."""
    top_k: TopK | None = None
    """Keep only the k most likely tokens, an integer from 0 to 2**63 - 1."""
    no_repeat_ngram_size: NoRepeatNgramSize | None = None
    """N-grams of this size never repeat, an integer from 0 to 2**63 - 1."""
    do_sample: bool | None = None
    """Sample instead of greedy decoding."""


class GetCompletionsFromDeploymentResponseBody(_Output):
    """A completion: its `id` and generated text `response` (each may be absent)."""

    id: str | None = None
    """The unique identifier of the completion."""
    response: str | None = None
    """The generated text."""


class _PromptDict(TypedDict):
    prompt: str


class GetCompletionsFromDeploymentRequestBodyTypedDict(_PromptDict, _SamplingDict):
    """A completion request body as a dict, for type checkers: ``prompt`` is required, the
    rest may be left out (or None: not sent). The values are checked at run time all the
    same."""


# --- chat ---------------------------------------------------------------------------------


ChatRole = Literal["system", "user", "assistant"]


class Messages(_Input):
    """One chat message: who wrote it (`role`) and its text (`content`)."""

    role: ChatRole
    """``"system"``, ``"user"`` or ``"assistant"`` (or a `Role`)."""
    content: str
    """The message's text."""


class MessagesTypedDict(TypedDict):
    """A chat message as a dict."""

    role: ChatRole | Role
    content: str


class GetChatCompletionsFromDeploymentRequestBody(_Input, kw_only=True):
    """A conversation (`messages`) and the generation settings of completions.
    ``streaming=True`` is refused: the API defines no streaming response format
    (``extra_body`` sends it anyway)."""

    messages: list[Messages]
    """The conversation so far, oldest first."""
    streaming: bool | None = None
    """Only False (or unset): see the class docstring."""
    temperature: Temperature | None = None
    """Sampling temperature, a finite number >= 0."""
    max_new_tokens: MaxNewTokens | None = None
    """Upper bound on the number of generated tokens, an integer from 1 to 2**31 - 1."""
    top_p: TopP | None = None
    """Nucleus sampling: keep tokens up to this cumulative probability, in [0, 1]."""
    top_k: TopK | None = None
    """Keep only the k most likely tokens, an integer from 0 to 2**63 - 1."""
    no_repeat_ngram_size: NoRepeatNgramSize | None = None
    """N-grams of this size never repeat, an integer from 0 to 2**63 - 1."""
    do_sample: bool | None = None
    """Sample instead of greedy decoding."""


class _MessagesDict(TypedDict):
    messages: list[MessagesTypedDict | Messages]


class GetChatCompletionsFromDeploymentRequestBodyTypedDict(
    _MessagesDict, _SamplingDict, total=False
):
    """A chat request body as a dict: ``messages`` is required."""

    streaming: bool | None


class GetChatCompletionsFromDeploymentResponseBody(_Output):
    """A chat completion: its `id` and the reply's text `response`."""

    id: str | None = None
    """The unique identifier of the chat completion."""
    response: str | None = None
    """The reply."""


# --- embeddings ---------------------------------------------------------------------------


class GetEmbeddingsFromDeploymentRequestBody(_Input):
    """Two sentences to embed and, optionally, which distances to compute between them."""

    source_sentence: str
    """The sentence to embed (``text1`` of the result)."""
    target_sentence: str
    """The sentence to compare it with (``text2``)."""
    cosine: bool | None = None
    """Return their cosine similarity."""
    manhattan: bool | None = None
    """Return their Manhattan distance."""
    euclidean: bool | None = None
    """Return their Euclidean distance."""


class _SentencesDict(TypedDict):
    source_sentence: str
    target_sentence: str


class GetEmbeddingsFromDeploymentRequestBodyTypedDict(_SentencesDict, total=False):
    """An embeddings request body as a dict: both sentences are required."""

    cosine: bool | None
    manhattan: bool | None
    euclidean: bool | None


class GetEmbeddingsFromDeploymentEmbeddings(_Output):
    """The two embedding vectors.

    Each is a list of floats that Python's cycle collector does not track: a batch over a
    corpus keeps two per row, and tracked, every collection would visit each of their
    floats. (A list is still freed when the last reference to it goes; only a cycle made
    by putting a container inside a vector would never be collected.)"""

    text1: list[float] | None = None
    """The source sentence's embedding."""
    text2: list[float] | None = None
    """The target sentence's embedding."""

    def __post_init__(self) -> None:
        # Runs as msgspec decodes one (and when one is made by hand).
        untrack(self.text1)
        untrack(self.text2)


class Response(_Output):
    """What an embeddings call computed: the vectors and the distances asked for."""

    embeddings: GetEmbeddingsFromDeploymentEmbeddings | None = None
    cosine_score: float | None = None
    manhattan_distance: float | None = None
    euclidean_distance: float | None = None


class GetEmbeddingsFromDeploymentResponseBody(_Output):
    """An embeddings result: its `id` and the `response` (vectors and distances)."""

    id: str | None = None
    response: Response | None = None


# --- classification -----------------------------------------------------------------------


class GetClassificationFromDeploymentRequestBody(_Input):
    """A sentence to classify."""

    source_sentence: str
    """The text to classify."""


class GetClassificationFromDeploymentRequestBodyTypedDict(TypedDict):
    """A classification request body as a dict."""

    source_sentence: str


class GetClassificationFromDeploymentResponseBody(_Output):
    """A classification: its `id` and the predicted class `response`."""

    id: str | None = None
    response: str | None = None
    """The predicted class."""


CompletionRequest = GetCompletionsFromDeploymentRequestBody
CompletionRequestDict = GetCompletionsFromDeploymentRequestBodyTypedDict
Completion = GetCompletionsFromDeploymentResponseBody
