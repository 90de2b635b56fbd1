"""Progress bars for long update loops: Rich on a terminal's stderr, silent elsewhere (pipes, CI, --json)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def update_bar(description: str, total: int, *, completed: int = 0, enabled: bool = True,
               unit: str = "updates", status: Callable[[], str] | None = None) -> Iterator[Callable[[int], None]]:
    """Yield show(completed): a bar of `total` updates with updates/s and time left, redrawn at most every
    1/200 of the total (so calling it after every update costs next to nothing); a no-op when disabled or
    when stderr is not a terminal.

    `unit` names what is counted (the speed column shows "<n> <unit>/s"); `status()`, when given, is a text
    shown after the bar and asked for at each redraw (a training's latest evaluation return, say)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class UpdatesPerSecond(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.0f} {unit}/s" if task.speed else "")

    console = Console(stderr=True)
    if not (enabled and console.is_terminal and total > 0):
        yield lambda done: None
        return
    columns = (TextColumn(description), BarColumn(), MofNCompleteColumn(), UpdatesPerSecond(), TimeRemainingColumn())
    columns += () if status is None else (TextColumn("{task.fields[status]}"),)
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total, completed=completed, status=status() if status else "")
        every = max(1, min(100, total // 200))
        fields = dict if status is None else lambda: {"status": status()}
        yield lambda done: progress.update(task, completed=done, **fields()) if done % every == 0 or done == total \
            else None


def tally(show: Callable[[int], None]) -> Callable[[], None]:
    """A listener that counts its calls and shows the running count (for `update_bar` fed one update at a time)."""
    done = 0

    def count() -> None:
        nonlocal done
        done += 1
        show(done)

    return count
