"""The sync facade: generated wrappers that run the async core on a private event loop."""

from .client import EmissaryClient
from .resources import Completions, Deployments

__all__ = ["Completions", "Deployments", "EmissaryClient"]
