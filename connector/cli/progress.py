"""A rich progress bar fed by a pass's ``progress(stage, done, total)`` callback (backfill and demo)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from connector.flow import Progress as ProgressCallback

LABELS = {"pull": "reading shop orders", "plan": "planning", "deliver": "delivering to the community"}


def progress_bar(console: Console, transient: bool = False) -> tuple[Progress, ProgressCallback]:
    """The bar (use it as a context manager) and the callback to hand to ``Connector.run_pass``."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(LABELS[stage], total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, progress
