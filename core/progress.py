"""Output for the person at the terminal: progress bars, notes on stderr, text fit to show.

Results and paths go to stdout; progress bars, notes, warnings and errors to stderr
(:func:`stderr_console`), so ``ganenc eval ... > report.txt`` holds the report and the
terminal still shows the bar.  Text from users and plugins is shown as written
(:func:`literal`), never read as rich markup, and in what the console's encoding can show.
"""

from __future__ import annotations

import time
from typing import Any


def stderr_console() -> Any:
    """The rich console of progress bars, notes and warnings: stderr."""
    from rich.console import Console

    return Console(stderr=True)


def shows(console: Any, text: str) -> bool:
    """Whether ``console``'s encoding can show ``text`` (``PYTHONIOENCODING=ascii``: not ``±``)."""
    try:
        text.encode(console.encoding)
    except (UnicodeError, LookupError):
        return False
    return True


def fitting(console: Any, text: str, plain: str) -> str:
    """``text`` where ``console`` can show it, else ``plain`` (``"↑"`` or ``"(higher)"``)."""
    return text if shows(console, text) else plain


def literal(console: Any, text: Any, style: str = "") -> Any:
    """A user's or plugin's ``text`` as a rich ``Text``: never markup (``smile[/]`` shows as
    written), a character the console cannot encode as its escape (``\\U0001f600``)."""
    from rich.text import Text

    text = str(text)
    if not shows(console, text):
        encoding = console.encoding
        text = text.encode(encoding, "backslashreplace").decode(encoding)
    return Text(text, style=style)


class Progress:
    """A rich progress bar on stderr with loss and rate; silent when disabled (other ranks, tests).

    ``unit`` names what is counted (``it``: steps, ``img``: images); ``loss=False`` drops the
    loss column (an encoder pass has none to show).
    """

    def __init__(
        self,
        total: int,
        start: int,
        enabled: bool,
        description: str,
        *,
        unit: str = "it",
        loss: bool = True,
    ) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()
        self.start_step = start
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
        if loss:
            columns.append(TextColumn("loss {task.fields[loss]}"))
        columns += [
            TextColumn(f"{{task.fields[rate]}} {unit}/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        self.bar = RichProgress(*columns, console=stderr_console())
        self.task = self.bar.add_task(description, total=total, completed=start, loss="-", rate="-")
        self.bar.start()

    def update(self, step: int, loss: Any = None) -> None:
        """``step`` done in all; ``loss`` (a number or a tensor) shown when given."""
        if not self.enabled:
            return
        rate = (step - self.start_step) / max(time.perf_counter() - self.started, 1e-9)
        fields = {"rate": f"{rate:.2f}"}
        if loss is not None:
            fields["loss"] = f"{float(loss):.4f}"
        self.bar.update(self.task, completed=step, **fields)

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()
