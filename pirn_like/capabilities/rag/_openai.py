"""``OpenAICompatibleLLM``: ``POST {base_url}/chat/completions`` over httpx.

Works with OpenAI and the many servers speaking its API (vLLM, llama.cpp, Ollama,
LiteLLM, ...). Rate limits (429), server errors (5xx), timeouts and dropped
connections are retried with exponential backoff; other errors fail at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import tenacity

from pirn_like._errors import MissingExtraError
from pirn_like.backends._url import redact
from pirn_like.capabilities.rag._errors import LLMError
from pirn_like.capabilities.rag._models import TextChunk
from pirn_like.capabilities.rag._prompt import render_messages

if TYPE_CHECKING:
    import httpx

__all__ = ["OpenAICompatibleLLM"]

_RETRIED_STATUS = frozenset({408, 409, 429})


class _RetryableError(Exception):
    """A response worth another attempt."""


def _retryable(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, _RetryableError | httpx.TransportError)


class OpenAICompatibleLLM:
    """A chat model behind an OpenAI-compatible HTTP API.

    ``api_key`` defaults to the ``api_key_env`` environment variable (read at the
    first call); with neither, no ``Authorization`` header is sent (local servers).
    ``timeout`` bounds each attempt; ``max_attempts`` counts the first one too;
    ``transport`` is an httpx transport (e.g. ``httpx.ASGITransport`` for an in-process
    server). The key never appears in ``identity``, errors or ``repr``.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0,
        max_tokens: int | None = None,
        timeout: float = 60.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not model:
            raise ValueError("OpenAICompatibleLLM: model must be a non-empty model name")
        if max_attempts < 1:
            raise ValueError(
                f"OpenAICompatibleLLM: max_attempts must be at least 1, got {max_attempts}"
            )
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._lock = anyio.Lock()

    @property
    def identity(self) -> str:
        """Model, endpoint and sampling settings: what can change an answer."""
        return (
            f"{self.model} at {redact(self.base_url)} "
            f"(temperature={self.temperature}, max_tokens={self.max_tokens})"
        )

    async def _open(self) -> httpx.AsyncClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        import httpx
                    except ImportError as exc:
                        raise MissingExtraError("OpenAICompatibleLLM", "rag", "httpx") from exc
                    key = (
                        self._api_key
                        if self._api_key is not None
                        else os.environ.get(self._api_key_env)
                    )
                    headers = {"Authorization": f"Bearer {key}"} if key else {}
                    self._client = httpx.AsyncClient(
                        headers=headers, timeout=self.timeout, transport=self._transport
                    )
        return self._client

    async def answer(self, question: str, context: Sequence[TextChunk]) -> str:
        """The model's reply to the RAG prompt for ``question`` and ``context``."""
        return await self.complete(render_messages(question, context))

    async def complete(self, messages: Sequence[dict[str, str]]) -> str:
        """The first choice's message content for ``messages``."""
        client = await self._open()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        url = f"{self.base_url}/chat/completions"
        try:
            async for attempt in tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception(_retryable),
                stop=tenacity.stop_after_attempt(self.max_attempts),
                wait=tenacity.wait_exponential(multiplier=self.backoff, max=30),
                sleep=anyio.sleep,
                reraise=True,
            ):
                with attempt:
                    response = await client.post(url, json=body)
                    if response.status_code in _RETRIED_STATUS or response.status_code >= 500:
                        raise _RetryableError(_describe(response))
                    if response.status_code >= 400:
                        raise LLMError(f"{self.identity}: {_describe(response)}")
                    return _content(self.identity, response)
        except _RetryableError as exc:
            raise LLMError(
                f"{self.identity}: gave up after {self.max_attempts} attempts: {exc}"
            ) from exc
        except LLMError:
            raise
        except Exception as exc:
            import httpx

            if isinstance(exc, httpx.HTTPError):
                raise LLMError(
                    f"{self.identity}: gave up after {self.max_attempts} attempts: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the HTTP client."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> OpenAICompatibleLLM:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM({self.identity})"


def _describe(response: httpx.Response) -> str:
    url = redact(str(response.request.url))
    return f"HTTP {response.status_code} from {url}: {response.text[:300]}"


def _content(identity: str, response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError) as exc:
        raise LLMError(
            f"{identity}: the reply has no choices[0].message.content: {response.text[:300]}"
        ) from exc
    if not isinstance(content, str):
        raise LLMError(
            f"{identity}: choices[0].message.content is {type(content).__name__}, not text"
        )
    return content
