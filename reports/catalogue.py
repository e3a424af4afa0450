"""Every report, registered by importing its module (one module per report)."""

from .library import (
    activity,  # noqa: F401
    customers,  # noqa: F401
    forecast,  # noqa: F401
    funnel,  # noqa: F401
    leads,  # noqa: F401
    win_rate,  # noqa: F401
)
