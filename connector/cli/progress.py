"""A rich progress bar fed by a pass's ``progress(stage, done, total)`` callback (backfill and demo).

Each line names what it counts (orders, customers, actions), since the stages count different things: 7 customers
planned can make 38 actions. A stage with no known total (the shop's orders) shows a count, not ``n/?``, and every
line is finished (its spinner stopped, its total set) when the next stage starts or the bar stops.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from connector.flow import Progress as ProgressCallback

#: stage → (what the line says, the unit it counts).
LABELS = {
    "pull": ("reading shop orders", "orders read"),
    "plan": ("planning", "customers planned"),
    "deliver": ("delivering to the community", "actions delivered"),
}


class CountColumn(ProgressColumn):
    """``29 orders read`` while the total is unknown, ``7/7 customers planned`` once it is known."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        done = int(task.completed)
        count = f"{done}/{int(task.total)}" if task.total is not None else str(done)
        return Text(f"{count} {unit}", style="progress.download")


class StageBar(Progress):
    """A :class:`~rich.progress.Progress` that finishes every line when it stops."""

    def finish_all(self) -> None:
        for task in self.tasks:
            if not task.finished:
                self.update(task.id, total=task.completed)

    def stop(self) -> None:
        self.finish_all()
        super().stop()


def progress_bar(console: Console, transient: bool = False) -> tuple[Progress, ProgressCallback]:
    """The bar (use it as a context manager) and the callback to hand to ``Connector.run_pass``."""
    bar = StageBar(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(),
        CountColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
    tasks: dict[str, TaskID] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            bar.finish_all()  # the stages run in turn: a new one means the one before is done
            label, unit = LABELS.get(stage, (stage, ""))
            tasks[stage] = bar.add_task(label, total=total, unit=unit)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, progress
