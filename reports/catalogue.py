"""Every report, registered by importing its module (one module per report)."""

from .library import (
    forecast,  # noqa: F401
    funnel,  # noqa: F401
)
