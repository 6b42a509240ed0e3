"""What the dashboard shows, as plain functions of the usage records: the table's rows and
totals as HTML, the two charts as PNG, and the formatting of numbers. No widgets here, so each
piece can be tested and timed alone; matplotlib is imported only when a chart is drawn.
"""

from __future__ import annotations

import html
import io
import time
from typing import Any

from ..store.usage import EntryStats, Totals, hit_rate, speedup, time_saved, title, value
from ..units import format_duration as _seconds
from ..units import format_size, size_scale

__all__ = ["COLUMNS", "SORT_KEYS", "disk_chart", "row_html", "sorted_rows", "speed_chart", "summary_html"]

# Table columns: (sort key, heading, width in px). "title" sorts by the entry's name.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("title", "Entry", 250),
    ("size", "Size", 75),
    ("hits", "Hits", 50),
    ("misses", "Misses", 70),
    ("hit_rate", "Hit rate", 70),
    ("runtime", "Ran in", 70),
    ("restore_time", "Restore", 70),
    ("speedup", "Speed-up", 115),
    ("time_saved", "Saved", 70),
    ("last_used", "Last used", 120),
)
SORT_KEYS = tuple(column for column, _heading, _width in COLUMNS)


def sorted_rows(rows: list[EntryStats], key: str, descending: bool) -> list[EntryStats]:
    """Rows sorted by a column; rows without a value (no restore yet...) always go last."""
    if key == "title":
        return sorted(rows, key=lambda r: title(r).lower(), reverse=descending)
    keyed = [(value(r, key), r) for r in rows]
    known = [(v, r) for v, r in keyed if v is not None]
    unknown = [r for v, r in keyed if v is None]
    return [r for _v, r in sorted(known, key=lambda pair: pair[0], reverse=descending)] + unknown


def row_html(row: EntryStats) -> str:
    values = {
        "title": html.escape(title(row)),
        "size": "–" if row.not_worth else _bytes(row.size),
        "hits": str(row.hits),
        "misses": str(row.misses),
        "hit_rate": _percent(hit_rate(row.hits, row.misses)),
        "runtime": _seconds(row.runtime),
        "restore_time": "–" if row.restore_time is None else _seconds(row.restore_time),
        "speedup": "not worth caching" if row.not_worth else _ratio(speedup(row)),
        "time_saved": _seconds(time_saved(row)),
        "last_used": _when(row.last_used),
    }
    cells = []
    for key, _heading, width in COLUMNS:
        align = "left" if key == "title" else "right"
        tip = f' title="{values["title"]} ({row.key[:12]})"' if key == "title" else ""
        cells.append(
            f'<span{tip} style="display:inline-block;width:{width}px;padding:0 6px;box-sizing:border-box;'
            f'text-align:{align};overflow:hidden;text-overflow:ellipsis;white-space:nowrap;vertical-align:middle">'
            f"{values[key]}</span>"
        )
    return f'<div class="nbcache-row" data-key="{row.key}" style="white-space:nowrap">{"".join(cells)}</div>'


def summary_html(totals: Totals, not_worth: int = 0) -> str:
    """The totals line; ``not_worth``: how many cells run without the cache because restoring
    them did not pay (nbcache.run.pays)."""
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
    if not_worth:
        parts.append(("Not worth caching", f"{not_worth:,} {'cell' if not_worth == 1 else 'cells'}"))
    items = "".join(
        f'<div style="margin-right:28px"><div style="font-size:85%;opacity:.7">{name}</div>'
        f'<div style="font-size:130%;font-weight:600">{value}</div></div>'
        for name, value in parts
    )
    return f'<div class="nbcache-totals" style="display:flex;flex-wrap:wrap;margin:4px 0 8px">{items}</div>'


def speed_chart(rows: list[tuple[str, float, float | None]]) -> bytes:
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


def disk_chart(rows: list[tuple[str, int]], totals: Totals) -> bytes:
    figure, axes = _figure(len(rows))
    if not rows:
        axes.text(0.5, 0.5, "The cache is empty", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
    else:
        scale, unit = size_scale(max(size for _n, size in rows))
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


def _bytes(size: int | None) -> str:
    return "–" if size is None else format_size(size)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "–"
    now = time.time()
    if time.strftime("%Y-%m-%d", time.localtime(stamp)) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("today %H:%M:%S", time.localtime(stamp))
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
