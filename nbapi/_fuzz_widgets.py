"""The widgets of ``%nbapi fuzz``: its progress while it runs, and the findings.

``FindingsWidget`` lists each finding with Replay (sent in-process again, the
response shown as ``%http`` shows it) and the request as ``%%http`` or curl, to
copy. Outside Jupyter the progress is one line on stderr.
"""

from __future__ import annotations

import contextlib
import html
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from ._findings import Finding, FuzzReport

Progress = Callable[[int, int, int, int], None]


def _line(done: int, total: int, requests: int, findings: int) -> str:
    return (
        f"nbapi fuzz: {done}/{total} operations, {requests} requests, "
        f"{findings} finding{'s' * (findings != 1)}"
    )


@contextlib.contextmanager
def progress_display() -> Iterator[Progress]:
    """A progress bar in Jupyter (gone when the run ends), else a line on stderr."""
    from ._findings import in_kernel

    if not in_kernel():
        shown = [False]

        def terminal(done: int, total: int, requests: int, findings: int) -> None:
            shown[0] = True
            sys.stderr.write("\r" + _line(done, total, requests, findings))
            sys.stderr.flush()

        try:
            yield terminal
        finally:
            if shown[0]:
                sys.stderr.write("\n")
        return
    from IPython.display import display, update_display

    bar = widgets.IntProgress(value=0, min=0, max=1, description="fuzzing")
    label = widgets.Label("")
    box = widgets.HBox([bar, label])
    display_id = f"nbapi-fuzz-{uuid.uuid4().hex}"
    # The same empty text now and after the run: nbval compares what it saw (it does not
    # apply display updates) with the saved notebook (where the update replaced the bar).
    bundle = dict(box._repr_mimebundle_() or {})
    bundle["text/plain"] = ""
    display(bundle, raw=True, display_id=display_id)

    def kernel(done: int, total: int, requests: int, findings: int) -> None:
        bar.max = max(total, 1)
        bar.value = done
        label.value = _line(done, total, requests, findings)

    try:
        yield kernel
    finally:
        # An empty text output in place of the bar: the saved notebook stays deterministic.
        update_display({"text/plain": ""}, raw=True, display_id=display_id)
        box.close()


class FindingsWidget(widgets.VBox):
    """Each finding of a report with Replay, ``%%http`` and curl."""

    def __init__(self, report: FuzzReport) -> None:
        super().__init__()
        self.report = report
        self.output = widgets.HTML("")
        head = html.escape(report.text().splitlines()[0])
        rows: list[widgets.Widget] = [widgets.HTML(f"<b>{head}</b>")]
        for finding in report.findings:
            rows.append(self._row(finding))
        self.children = [*rows, self.output]

    def _row(self, finding: Finding) -> widgets.Widget:
        text = (
            f"<code>{html.escape(finding.operation)}</code> {html.escape(finding.title)} "
            f"<span style='color:#c62828'>HTTP {finding.status_code}</span>"
        )
        replay = widgets.Button(description="Replay", layout=widgets.Layout(width="auto"))
        as_http = widgets.Button(description="%%http", layout=widgets.Layout(width="auto"))
        as_curl = widgets.Button(description="curl", layout=widgets.Layout(width="auto"))
        replay.on_click(lambda _: self.show_replay(finding))
        as_http.on_click(lambda _: self.show_text(finding.http))
        as_curl.on_click(lambda _: self.show_text(finding.curl))
        return widgets.HBox([widgets.HTML(text), replay, as_http, as_curl])

    def show_replay(self, finding: Finding) -> None:
        try:
            text = finding.replay().text_view()
        except Exception as exc:  # the widget says what went wrong instead of raising
            text = f"replay failed: {type(exc).__name__}: {exc}"
        self.output.value = f"<pre>{html.escape(text)}</pre>"

    def show_text(self, text: str) -> None:
        self.output.value = (
            "<textarea readonly rows='6' style='width:100%;font-family:monospace'>"
            f"{html.escape(text)}</textarea>"
        )

    def __repr__(self) -> str:
        count = len(self.report.findings)
        return f"<nbapi fuzz findings: {count}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
        return bundle
