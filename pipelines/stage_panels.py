"""Panels on a pipeline's stage settings: what a higher app shows about each stage in
the pipeline admin's stage rows (automation: the stage's robots and templates to add
one), without pipelines knowing that app (ARCHITECTURE.md: dependencies point one way).

A panel is registered once, from its app's `AppConfig.ready()`:

    register_stage_panel(StagePanel("robots", _("Robots"), render_robots))

and shows as a read-only column of the stage rows (named "stage_panel_<key>"), headed
by its `title`, after the stage's own fields, in `order`. `render(stage, request)`
returns the cell's HTML, built with `format_html` (it is not escaped again) from inline
elements (the admin puts a read-only cell in a paragraph); it is called for saved stages
only (a new row reads "—"), so it may link to pages that need the stage's id, and once
per stage: a panel that reads the database reads a pipeline's worth once per request.
Registering a key again replaces the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from .models import Stage


@dataclass(frozen=True)
class StagePanel:
    key: str
    title: Any  # the column's heading (a lazy translation)
    render: Callable[[Stage, HttpRequest], str]
    order: int = 100


_panels: dict[str, StagePanel] = {}


def register_stage_panel(panel: StagePanel) -> StagePanel:
    _panels[panel.key] = panel
    return panel


def unregister_stage_panel(key: str) -> None:
    _panels.pop(key, None)


def stage_panels() -> list[StagePanel]:
    return sorted(_panels.values(), key=lambda p: (p.order, p.key))
