"""The cache dashboard: an ipywidgets composite over :mod:`nbcache.store.usage`.

Shaped like ipywidgets' ``AppLayout``: typed traits (filter, sort, page...) and one method,
:meth:`Dashboard.recompute`, that brings every child up to date with them and with the data. Only
standard widgets are used, so it renders in JupyterLab, Notebook 7 and VS Code alike.

Opening must stay fast with 10,000 entries: the table keeps a pool of row widgets as large as one
page and only rewrites their values, and the charts are drawn again only when what they show
changed. The ``post_run_cell`` hook that keeps it live is registered on open and removed in
:meth:`Dashboard.close`.
"""

from __future__ import annotations

import functools
import heapq
import sys
import traceback
from typing import Any, Callable, Literal, TypeVar

import ipywidgets as widgets
from traitlets import Bool, Enum, Int, Unicode, observe

from ..run.pays import forget as forget_verdicts
from ..store.cache import Cache
from ..store.usage import EntryStats, Totals, collect, time_saved, title
from .dashboard_view import COLUMNS, SORT_KEYS, disk_chart, row_html, sorted_rows, speed_chart, summary_html

__all__ = ["Dashboard"]

F = TypeVar("F", bound=Callable[..., Any])

_CHART_ROWS = 12


class Dashboard(widgets.VBox):
    """Totals, a table of entries and two charts for one cache; refreshes after every cell."""

    filter = Unicode("", help="Show the entries whose name or key contains this text (any case).")
    sort_by = Enum(SORT_KEYS, default_value="last_used", help="The column the table is sorted by.")
    descending = Bool(True, help="Largest (or latest) first.")
    page = Int(0, help="Which page of the table is shown, from 0.")
    page_size = Int(15, min=1, help="Rows per page.")
    confirming = Bool(False, help="'Clear all' was pressed and waits for a confirmation.")

    _ready = False  # observers wait until the children exist
    _closed = False

    def __init__(self, cache: Callable[[], Cache], shell: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._cache = cache
        self._shell = shell
        self._rows: list[EntryStats] = []
        self._totals = Totals(0, 0, None, 0, 0, 0.0)
        self._view: list[EntryStats] = []
        self._chart_keys: dict[str, Any] = {}

        self.errors = widgets.Output()
        self.summary = widgets.HTML()
        self.search = widgets.Text(placeholder="filter entries", continuous_update=True, layout=widgets.Layout(width="220px"))
        self._search_link = widgets.link((self.search, "value"), (self, "filter"))
        self.previous_button = widgets.Button(description="‹ Prev", tooltip="Previous page", layout=widgets.Layout(width="70px"))
        self.next_button = widgets.Button(description="Next ›", tooltip="Next page", layout=widgets.Layout(width="70px"))
        self.page_label = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh", tooltip="Read the cache again")
        self.clear_button = widgets.Button(description="Clear all…", icon="trash", button_style="danger", tooltip="Remove every entry")
        self.confirm_button = widgets.Button(description="Yes, delete all", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_label = widgets.HTML()
        self.confirm_box = widgets.HBox([self.confirm_label, self.confirm_button, self.cancel_button])
        self.previous_button.on_click(self._guard(lambda _b: self._turn(-1)))
        self.next_button.on_click(self._guard(lambda _b: self._turn(+1)))
        self.refresh_button.on_click(self._guard(lambda _b: self.refresh(sync=True)))
        self.clear_button.on_click(self._guard(lambda _b: setattr(self, "confirming", True)))
        self.cancel_button.on_click(self._guard(lambda _b: setattr(self, "confirming", False)))
        self.confirm_button.on_click(self._guard(lambda _b: self.clear_all()))

        # No margin, so that the headings line up with the cells below them (spans of these widths).
        self._column_layouts = {
            key: widgets.Layout(width=f"{width}px", min_width=f"{width}px", margin="0", padding="0 4px")
            for key, _h, width in COLUMNS
        }
        self.headings: dict[str, widgets.Button] = {}
        for key, heading, _width in COLUMNS:
            button = widgets.Button(description=heading, tooltip=f"Sort by {heading.lower()}", layout=self._column_layouts[key])
            button.on_click(self._guard(functools.partial(self._sort_clicked, key)))
            self.headings[key] = button
        self.header = widgets.HBox(list(self.headings.values()))
        # One pooled row per visible line: an HTML of the cells and an invalidate button.
        self.rows: list[widgets.HBox] = []
        self.row_cells: list[widgets.HTML] = []
        self.invalidate_buttons: list[widgets.Button] = []
        self._row_keys: list[str | None] = []
        self.table = widgets.VBox([self.header])

        self.runtime_chart = widgets.Image(format="png", layout=widgets.Layout(max_width="520px"))
        self.disk_chart = widgets.Image(format="png", layout=widgets.Layout(max_width="520px"))

        toolbar = widgets.HBox(
            [self.search, self.previous_button, self.page_label, self.next_button, self.refresh_button, self.clear_button],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.children = (
            self.summary,
            toolbar,
            self.confirm_box,
            self.table,
            widgets.HBox([self.runtime_chart, self.disk_chart], layout=widgets.Layout(flex_flow="row wrap")),
            self.errors,
        )
        self.add_class("nbcache-dashboard")
        self._ready = True
        self.refresh(sync="if stale")  # on open: entries other kernels wrote too
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop refreshing after cells and remove the widgets from the frontend."""
        if self._closed:  # a second call (ipywidgets also closes a widget when it is collected)
            return
        self._closed = True
        if self._shell is not None:
            try:
                self._shell.events.unregister("post_run_cell", self._after_cell)
            except ValueError:
                pass  # the first refresh failed in __init__, before the hook was registered
        self._search_link.unlink()
        for child in self._descendants():
            child.close()
        super().close()

    def _descendants(self) -> list[widgets.Widget]:
        found: list[widgets.Widget] = []
        stack = list(self.children)
        while stack:
            widget = stack.pop()
            found.append(widget)
            stack.extend(getattr(widget, "children", ()))
        return found

    def _after_cell(self, result: Any = None) -> None:
        self._guard(lambda: self.refresh())()

    # -- actions ---------------------------------------------------------------------------------
    def refresh(self, sync: bool | Literal["if stale"] = False) -> None:
        """Read the cache's numbers again and show them; ``sync`` also picks up entries other
        kernels or machines wrote (on open and on the Refresh button, not after every cell)."""
        self._rows, self._totals = collect(self._cache(), sync=sync)
        self.recompute()

    def invalidate(self, key: str) -> None:
        """Remove one entry from the store now (a cell marked "not worth caching" is stored again
        on its next run)."""
        self._forget(self._cache(), [key])
        self.refresh()

    def clear_all(self) -> None:
        """Remove every entry (the button asks for a confirmation first)."""
        self._forget(self._cache(), [row.key for row in self._rows])
        self.confirming = False
        self.refresh()

    @staticmethod
    def _forget(cache: Cache, keys: list[str]) -> None:
        for key in keys:
            cache.delete(key)
        if hasattr(cache, "index"):
            forget_verdicts(cache, keys)

    def _turn(self, step: int) -> None:
        self.page = max(0, min(self.page + step, self._pages - 1))

    def _sort_clicked(self, key: str, _button: Any = None) -> None:
        if self.sort_by == key:
            self.descending = not self.descending
        else:
            with self.hold_trait_notifications():
                self.sort_by = key
                self.descending = key != "title"

    def _invalidate_clicked(self, slot: int, _button: Any = None) -> None:
        key = self._row_keys[slot]
        if key is not None:
            self.invalidate(key)

    @observe("filter", "sort_by", "descending", "page_size")
    def _view_changed(self, change: Any) -> None:
        if not self._ready:
            return
        if self.page:
            self.page = 0  # recomputes through _page_changed
        else:
            self._guard(self.recompute)()

    @observe("page", "confirming")
    def _page_changed(self, change: Any) -> None:
        if self._ready:
            self._guard(self.recompute)()

    # -- the one method that brings the children up to date ------------------------------------------
    @property
    def _pages(self) -> int:
        return max(1, -(-len(self._view) // self.page_size))

    def recompute(self) -> None:
        """Filter, sort and page the rows; update totals, table and charts to match."""
        needle = self.filter.strip().lower()
        rows = [r for r in self._rows if needle in title(r).lower() or needle in r.key] if needle else list(self._rows)
        self._view = sorted_rows(rows, self.sort_by, self.descending)
        if self.page >= self._pages:
            self.page = self._pages - 1  # recomputes through _page_changed
            return

        self.summary.value = summary_html(self._totals, sum(1 for r in self._rows if r.not_worth))
        first = self.page * self.page_size
        visible = self._view[first:first + self.page_size]
        shown = f"{first + 1}–{first + len(visible)} of {len(self._view)}" if visible else f"0 of {len(self._view)}"
        self.page_label.value = f"<span style='padding: 0 6px'>{shown}</span>"
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self._pages - 1
        self.clear_button.disabled = not self._rows
        self.confirm_label.value = f"<b>Delete all {len(self._rows)} entries from the cache?</b>&nbsp;"
        self.confirm_box.layout.display = None if self.confirming else "none"

        for key, heading, _width in COLUMNS:
            arrow = (" ▼" if self.descending else " ▲") if key == self.sort_by else ""
            self.headings[key].description = heading + arrow
        self._fill_rows(visible)
        self._draw_charts()

    def _fill_rows(self, visible: list[EntryStats]) -> None:
        while len(self.rows) < len(visible):
            self._add_row()
        for slot, row in enumerate(self.rows):
            if slot < len(visible):
                entry = visible[slot]
                self.row_cells[slot].value = row_html(entry)
                self.invalidate_buttons[slot].tooltip = f"Invalidate {title(entry)}"
                self._row_keys[slot] = entry.key
                row.layout.display = None
            else:
                self._row_keys[slot] = None
                row.layout.display = "none"
        wanted = (self.header, *self.rows)
        if self.table.children != wanted:
            self.table.children = wanted

    def _add_row(self) -> None:
        slot = len(self.rows)
        cells = widgets.HTML(layout=widgets.Layout(width=f"{sum(w for _k, _h, w in COLUMNS)}px"))
        button = widgets.Button(description="Invalidate", icon="times", layout=widgets.Layout(width="110px"))
        button.on_click(self._guard(functools.partial(self._invalidate_clicked, slot)))
        self.rows.append(widgets.HBox([cells, button], layout=widgets.Layout(align_items="center")))
        self.row_cells.append(cells)
        self.invalidate_buttons.append(button)
        self._row_keys.append(None)

    def _draw_charts(self) -> None:
        # The charts show a few rows: pick them without sorting every entry (100,000 of them, say).
        by_saving = heapq.nlargest(_CHART_ROWS, self._rows, key=lambda r: (r.restore_time is not None, time_saved(r), r.runtime))
        speed = [(title(r), r.runtime, r.restore_time) for r in by_saving]
        if self._chart_keys.get("speed") != speed:
            self.runtime_chart.value = speed_chart(speed)
            self._chart_keys["speed"] = speed
        stored = [r for r in self._rows if not r.not_worth]  # a cell not worth caching has no entry
        by_size = heapq.nlargest(_CHART_ROWS - 1, stored, key=lambda r: r.size)
        disk = [(title(r), r.size) for r in by_size]
        rest = len(stored) - len(by_size)
        if rest:
            disk.append((f"{rest} other entries", sum(r.size for r in stored) - sum(r.size for r in by_size)))
        disk_key = (disk, self._totals.size, self._totals.size_limit)
        if self._chart_keys.get("disk") != disk_key:
            self.disk_chart.value = disk_chart(disk, self._totals)
            self._chart_keys["disk"] = disk_key

    # -- errors ----------------------------------------------------------------------------------
    def _guard(self, function: F) -> F:
        """Callbacks run from the frontend: show their errors to the user, in the dashboard."""

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception:
                if self._shell is None:
                    traceback.print_exc(file=sys.stderr)
                    return None
                # In a kernel, output inside the Output widget's context goes into it, so the
                # traceback shows under the dashboard rather than in the browser's console.
                with self.errors:
                    self._shell.showtraceback()
                return None

        return guarded  # type: ignore[return-value]
