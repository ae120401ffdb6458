"""Model plugins: the interface and the built-ins."""

from genbench.models.base import Capability, GenerativeModel

__all__ = ["Capability", "GenerativeModel"]
