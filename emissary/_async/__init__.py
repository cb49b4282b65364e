"""The async core: the one implementation of every operation (the sync facade wraps it)."""

from .client import AsyncEmissaryClient
from .resources import AsyncCompletions, AsyncDeployments

__all__ = ["AsyncCompletions", "AsyncDeployments", "AsyncEmissaryClient"]
