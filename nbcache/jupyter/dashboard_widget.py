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
import html
import io
import sys
import time
import traceback
from typing import Any, Callable, TypeVar

import ipywidgets as widgets
from traitlets import Bool, Enum, Int, Unicode, observe

from ..store.cache import Cache
from ..store.usage import EntryStats, Totals, collect, hit_rate, speedup, time_saved, title, value

__all__ = ["Dashboard"]

F = TypeVar("F", bound=Callable[..., Any])

# Table columns: (sort key, heading, width in px). "title" sorts by the entry's name.
_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("title", "Entry", 250),
    ("size", "Size", 75),
    ("hits", "Hits", 50),
    ("misses", "Misses", 70),
    ("hit_rate", "Hit rate", 70),
    ("runtime", "Ran in", 70),
    ("restore_time", "Restore", 70),
    ("speedup", "Speed-up", 85),
    ("time_saved", "Saved", 70),
    ("last_used", "Last used", 120),
)
_SORT_KEYS = tuple(column for column, _heading, _width in _COLUMNS)
_CHART_ROWS = 12


class Dashboard(widgets.VBox):
    """Totals, a table of entries and two charts for one cache; refreshes after every cell."""

    filter = Unicode("", help="Show the entries whose name or key contains this text (any case).")
    sort_by = Enum(_SORT_KEYS, default_value="last_used", help="The column the table is sorted by.")
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
            for key, _h, width in _COLUMNS
        }
        self.headings: dict[str, widgets.Button] = {}
        for key, heading, _width in _COLUMNS:
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
        self.refresh(sync=True)  # on open: entries other kernels wrote too
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
    def refresh(self, sync: bool = False) -> None:
        """Read the cache's numbers again and show them; ``sync`` also picks up entries other
        kernels or machines wrote (on open and on the Refresh button, not after every cell)."""
        self._rows, self._totals = collect(self._cache(), sync=sync)
        self.recompute()

    def invalidate(self, key: str) -> None:
        """Remove one entry from the store now."""
        self._cache().delete(key)
        self.refresh()

    def clear_all(self) -> None:
        """Remove every entry (the button asks for a confirmation first)."""
        cache = self._cache()
        for row in list(self._rows):
            cache.delete(row.key)
        self.confirming = False
        self.refresh()

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
        self._view = _sorted(rows, self.sort_by, self.descending)
        if self.page >= self._pages:
            self.page = self._pages - 1  # recomputes through _page_changed
            return

        self.summary.value = _summary_html(self._totals, self._rows)
        first = self.page * self.page_size
        visible = self._view[first:first + self.page_size]
        shown = f"{first + 1}–{first + len(visible)} of {len(self._view)}" if visible else f"0 of {len(self._view)}"
        self.page_label.value = f"<span style='padding: 0 6px'>{shown}</span>"
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self._pages - 1
        self.clear_button.disabled = not self._rows
        self.confirm_label.value = f"<b>Delete all {len(self._rows)} entries from the cache?</b>&nbsp;"
        self.confirm_box.layout.display = None if self.confirming else "none"

        for key, heading, _width in _COLUMNS:
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
                self.row_cells[slot].value = _row_html(entry)
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
        cells = widgets.HTML(layout=widgets.Layout(width=f"{sum(w for _k, _h, w in _COLUMNS)}px"))
        button = widgets.Button(description="Invalidate", icon="times", layout=widgets.Layout(width="110px"))
        button.on_click(self._guard(functools.partial(self._invalidate_clicked, slot)))
        self.rows.append(widgets.HBox([cells, button], layout=widgets.Layout(align_items="center")))
        self.row_cells.append(cells)
        self.invalidate_buttons.append(button)
        self._row_keys.append(None)

    def _draw_charts(self) -> None:
        by_saving = sorted(self._rows, key=lambda r: (r.restore_time is not None, time_saved(r), r.runtime), reverse=True)
        speed = [(title(r), r.runtime, r.restore_time) for r in by_saving[:_CHART_ROWS]]
        if self._chart_keys.get("speed") != speed:
            self.runtime_chart.value = _speed_chart(speed)
            self._chart_keys["speed"] = speed
        by_size = sorted(self._rows, key=lambda r: r.size, reverse=True)
        disk = [(title(r), r.size) for r in by_size[:_CHART_ROWS - 1]]
        rest = by_size[_CHART_ROWS - 1:]
        if rest:
            disk.append((f"{len(rest)} other entries", sum(r.size for r in rest)))
        disk_key = (disk, self._totals.size, self._totals.size_limit)
        if self._chart_keys.get("disk") != disk_key:
            self.disk_chart.value = _disk_chart(disk, self._totals)
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


# -- pure helpers ------------------------------------------------------------------------------------
def _sorted(rows: list[EntryStats], key: str, descending: bool) -> list[EntryStats]:
    """Rows sorted by a column; rows without a value (no restore yet...) always go last."""
    if key == "title":
        return sorted(rows, key=lambda r: title(r).lower(), reverse=descending)
    keyed = [(value(r, key), r) for r in rows]
    known = [(v, r) for v, r in keyed if v is not None]
    unknown = [r for v, r in keyed if v is None]
    return [r for _v, r in sorted(known, key=lambda pair: pair[0], reverse=descending)] + unknown


def _row_html(row: EntryStats) -> str:
    values = {
        "title": html.escape(title(row)),
        "size": _bytes(row.size),
        "hits": str(row.hits),
        "misses": str(row.misses),
        "hit_rate": _percent(hit_rate(row.hits, row.misses)),
        "runtime": _seconds(row.runtime),
        "restore_time": "–" if row.restore_time is None else _seconds(row.restore_time),
        "speedup": _ratio(speedup(row)),
        "time_saved": _seconds(time_saved(row)),
        "last_used": _when(row.last_used),
    }
    cells = []
    for key, _heading, width in _COLUMNS:
        align = "left" if key == "title" else "right"
        tip = f' title="{values["title"]} ({row.key[:12]})"' if key == "title" else ""
        cells.append(
            f'<span{tip} style="display:inline-block;width:{width}px;padding:0 6px;box-sizing:border-box;'
            f'text-align:{align};overflow:hidden;text-overflow:ellipsis;white-space:nowrap;vertical-align:middle">'
            f"{values[key]}</span>"
        )
    return f'<div class="nbcache-row" data-key="{row.key}" style="white-space:nowrap">{"".join(cells)}</div>'


def _summary_html(totals: Totals, rows: list[EntryStats]) -> str:
    if totals.size_limit:
        disk = f"{_bytes(totals.size)} of {_bytes(totals.size_limit)} ({totals.size / totals.size_limit:.0%})"
    else:
        disk = f"{_bytes(totals.size)} (no size limit)"
    rate = _percent(hit_rate(totals.hits, totals.misses))
    parts = [
        ("Entries", f"{totals.entries:,}"),
        ("Disk used", disk),
        ("Hit rate", f"{rate} ({_count(totals.hits, 'hit')}, {_count(totals.misses, 'miss')})"),
        ("Time saved", _seconds(totals.time_saved)),
    ]
    items = "".join(
        f'<div style="margin-right:28px"><div style="font-size:85%;opacity:.7">{name}</div>'
        f'<div style="font-size:130%;font-weight:600">{value}</div></div>'
        for name, value in parts
    )
    return f'<div class="nbcache-totals" style="display:flex;flex-wrap:wrap;margin:4px 0 8px">{items}</div>'


def _speed_chart(rows: list[tuple[str, float, float | None]]) -> bytes:
    figure, axes = _figure(len(rows))
    if not rows:
        axes.text(0.5, 0.5, "No entries yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
    else:
        labels = [_short(name) for name, _r, _t in rows][::-1]
        runtimes = [max(r, 1e-6) for _n, r, _t in rows][::-1]
        restores = [max(t, 1e-6) if t is not None else 0.0 for _n, _r, t in rows][::-1]
        positions = range(len(rows))
        axes.barh([p + 0.2 for p in positions], runtimes, height=0.4, label="ran in", color="#4c72b0")
        axes.barh([p - 0.2 for p in positions], restores, height=0.4, label="restored in", color="#55a868")
        for position, runtime, restore in zip(positions, runtimes, restores):
            if restore:
                axes.text(runtime, position + 0.2, " " + _ratio(runtime / restore), va="center", fontsize=8)
        axes.set_yticks(list(positions), labels, fontsize=8)
        axes.set_xscale("log")
        # Plain "10 ms" labels on the decades only: the default 10^n labels go through mathtext,
        # and minor ticks with their formatters, which cost more than the rest of the chart.
        from matplotlib.ticker import FuncFormatter, NullLocator

        axes.xaxis.set_minor_locator(NullLocator())
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _seconds(value)))
        axes.set_xlim(right=max(runtimes) * 6)  # room for the ×ratio labels
        axes.set_xlabel("log scale")
        axes.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False, borderaxespad=0.2)
    axes.set_title("Runtime vs restore time", fontsize=10, loc="left", pad=16)  # the legend goes below it
    return _png(figure)


def _disk_chart(rows: list[tuple[str, int]], totals: Totals) -> bytes:
    figure, axes = _figure(len(rows))
    if not rows:
        axes.text(0.5, 0.5, "The cache is empty", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
    else:
        scale, unit = _unit(max(size for _n, size in rows))
        positions = range(len(rows))
        sizes = [size / scale for _n, size in rows][::-1]
        axes.barh(list(positions), sizes, color="#dd8452")
        axes.set_yticks(list(positions), [_short(name) for name, _s in rows][::-1], fontsize=8)
        axes.set_xlabel(unit)
    limit = f" of {_bytes(totals.size_limit)}" if totals.size_limit else ""
    axes.set_title(f"Where the disk goes ({_bytes(totals.size)}{limit})", fontsize=10, loc="left")
    return _png(figure)


def _figure(bars: int) -> tuple[Any, Any]:
    # The object-oriented API, not pyplot: nothing is registered with the notebook's backend, so
    # no figure is shown twice or leaks.
    from matplotlib.figure import Figure

    height = max(2.4, 1.0 + 0.3 * bars)
    figure = Figure(figsize=(5.6, height), dpi=90)
    # Fixed margins (room for 28-character labels) rather than tight_layout, which costs as much
    # as drawing the chart.
    figure.subplots_adjust(left=0.36, right=0.95, top=1 - 0.55 / height, bottom=0.5 / height)
    axes = figure.add_subplot()
    return figure, axes


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "es" if noun.endswith("s") else "s")


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    for scale, suffix in ((1e6, "M"), (1e4, "k")):
        if ratio >= scale:
            return f"×{ratio / scale:.0f}{suffix}"
    return f"×{ratio:,.0f}" if ratio >= 10 else f"×{ratio:.1f}"


def _percent(fraction: float | None) -> str:
    return "–" if fraction is None else f"{fraction:.0%}"


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _unit(size: float) -> tuple[float, str]:
    for scale, unit in ((1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")):
        if size >= scale:
            return float(scale), unit
    return 1.0, "bytes"


def _bytes(size: int | None) -> str:
    if size is None:
        return "–"
    scale, unit = _unit(size)
    return f"{size} B" if scale == 1 else f"{size / scale:.1f} {unit}"


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.1f} s"
    if value >= 0.001:
        return f"{value * 1000:.0f} ms"
    return "0 s" if value <= 0 else f"{value * 1e6:.0f} µs"


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "–"
    now = time.time()
    if time.strftime("%Y-%m-%d", time.localtime(stamp)) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("today %H:%M:%S", time.localtime(stamp))
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
