"""Widgets on a hit, through real kernels (nbclient): live again, in the state the run left them.

A notebook of widget cells runs three times in fresh kernels: filling the cache, after a restart
(every cached cell hits), and plain. After the widget cells a probe cell prints the state of every
widget alive in the kernel (``Widget.get_manager_state``), and nbclient, like a frontend, keeps
the state the kernel's comm messages gave each model (the notebook's widget metadata). For each
view a hit shows, the model must be alive in the kernel and in nbclient's state, and its state
(with the widgets it refers to) must be the final state: the first run's exactly, and the plain
run's up to model ids and tqdm's timings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import comparable, is_note, run_notebook

VIEW = "application/vnd.jupyter.widget-view+json"
CELLS = {
    "tqdm": (
        "from tqdm.auto import tqdm\n"
        "total = 0\n"
        "for step in tqdm(range(50), desc='train'):\n"
        "    total += step\n"
        "print(total)\n"
    ),
    "controls": (
        "import ipywidgets as widgets\n"
        "slider = widgets.IntSlider(value=3, min=0, max=10, description='k')\n"
        "display(slider)\n"
        "slider.value = 7\n"
        "widgets.VBox([widgets.Text(value='hello'), widgets.Checkbox(value=True, description='on'),\n"
        "              widgets.Dropdown(options=['a', 'b'], value='b'), widgets.FloatProgress(value=3, max=4)])\n"
    ),
    "output": (
        "import ipywidgets as widgets\nimport matplotlib.pyplot as plt\n"
        "out = widgets.Output()\n"
        "display(out)\n"
        "with out:\n"
        "    print('inside')\n"
        "    plt.plot([1, 2, 3])\n"
        "    plt.show()\n"
        "print('outside')\n"
    ),
}
PROBE = "import json, ipywidgets\nprint(json.dumps(ipywidgets.Widget.get_manager_state()['state'], default=str))\n"
AFTER = "print(json.dumps([slider.value, slider.model_id, out.model_id, total]))\n"
_TIMING = re.compile(r"\d\d:\d\d<\d\d:\d\d|\d\d:\d\d<\?|[\d.]+(it/s|s/it)|\?it/s")


def _cells(cached: bool) -> list[str]:
    head = ["%load_ext nbcache" if cached else "pass", "%matplotlib inline"]
    body = [f"%%cache\n{c}" if cached else c for c in CELLS.values()]
    return [*head, *body, PROBE, AFTER]


def _index(name: str) -> int:
    return 2 + list(CELLS).index(name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("widgets")
    env = {"NBCACHE_DIR": str(root / "cache")}
    out = {}
    for phase, cached in (("first", True), ("second", True), ("plain", False)):
        nb = run_notebook(_cells(cached), root, env if cached else {}, timeout=300)
        probe = nb.cells[len(CELLS) + 2]
        out[phase] = {
            "nb": nb,
            "kernel": json.loads(probe.outputs[0]["text"]),  # what the kernel holds after the cells
            "comms": nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"],  # what its messages said
            "after": json.loads(nb.cells[len(CELLS) + 3].outputs[0]["text"]),
        }
    return out


def _views(cell: Any) -> list[str]:
    return [o["data"][VIEW]["model_id"] for o in cell.outputs if VIEW in o.get("data", {})]


def _tree(model_id: str, states: dict[str, Any], timings: bool = True) -> Any:
    """A model's state with the models it refers to expanded in place: comparable across kernels."""

    def expand(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("IPY_MODEL_"):
            return _tree(value[len("IPY_MODEL_") :], states, timings)
        if isinstance(value, str) and not timings:
            return _TIMING.sub("<t>", value)
        if isinstance(value, dict):
            return {k: expand(v) for k, v in value.items() if k != "model_id"}
        if isinstance(value, list):
            return [expand(v) for v in value]
        return value

    entry = states[model_id]
    return {"model": entry["model_name"], "state": expand(entry["state"])}


def _outputs(cell: Any) -> list[Any]:
    """The cell's outputs, model ids blanked."""
    blanked = []
    for o in comparable(cell.outputs):
        if VIEW in o.get("data", {}):
            o = {**o, "data": {**o["data"], VIEW: {**o["data"][VIEW], "model_id": "<id>"}}}
        blanked.append(o)
    return blanked


@pytest.mark.parametrize("name", list(CELLS))
def test_widgets_are_live_in_their_final_state_after_a_restart(name: str, runs: dict[str, Any]) -> None:
    first, second, plain = (runs[p]["nb"].cells[_index(name)] for p in ("first", "second", "plain"))
    assert not any(is_note(o) for o in first.outputs)
    assert [o["metadata"]["nbcache"]["status"] for o in second.outputs if is_note(o)] == ["hit"], second.outputs
    # the hit shows what running the cell shows (model ids aside)
    assert _outputs(second) == _outputs(plain)
    views = _views(second)
    assert views and len(views) == len(_views(plain))
    assert not set(views) & set(_views(first)), "a hit after a restart must name models of this kernel"
    for got, ran, want in zip(views, _views(first), _views(plain)):
        for where in ("kernel", "comms"):
            states = runs["second"][where]
            assert got in states, f"the view's model {got} is not alive ({where})"
            # exactly the state the first run left, and what a plain run leaves (tqdm's clock aside)
            assert _tree(got, states) == _tree(ran, runs["first"][where])
            assert _tree(got, states, timings=False) == _tree(want, runs["plain"][where], timings=False)


def test_tqdm_bar_shows_100_percent_and_its_final_counts(runs: dict[str, Any]) -> None:
    states = runs["second"]["kernel"]
    (bar,) = _views(runs["second"]["nb"].cells[_index("tqdm")])
    left, progress, right = (states[ref[len("IPY_MODEL_") :]] for ref in states[bar]["state"]["children"])
    assert progress["model_name"] == "FloatProgressModel"
    assert progress["state"]["value"] == progress["state"]["max"] == 50
    assert progress["state"]["bar_style"] == "success"
    assert left["state"]["value"].replace("\u2007", " ") == "train: 100%"
    assert right["state"]["value"].replace("\u2007", " ").startswith(" 50/50 [")


def test_restored_variables_are_the_widgets_shown(runs: dict[str, Any]) -> None:
    value, slider_id, out_id, total = runs["second"]["after"]
    assert value == 7 and total == sum(range(50))
    assert slider_id == _views(runs["second"]["nb"].cells[_index("controls")])[0]
    assert out_id == _views(runs["second"]["nb"].cells[_index("output")])[0]
    slider = runs["second"]["kernel"][slider_id]["state"]
    assert (slider["value"], slider["description"], slider["max"]) == (7, "k", 10)


def test_a_plot_inside_an_output_widget_goes_into_the_widget(runs: dict[str, Any]) -> None:
    for phase in ("second", "plain"):
        cell = runs[phase]["nb"].cells[_index("output")]
        (out,) = _views(cell)
        captured = runs[phase]["comms"][out]["state"]["outputs"]
        assert [o["output_type"] for o in captured] == ["stream", "display_data"], (phase, captured)
        assert captured[0]["text"] == "inside\n" and "image/png" in captured[1]["data"]
        # and not into the cell itself
        assert [o.get("text") for o in comparable(cell.outputs) if o["output_type"] == "stream"] == ["outside\n"]
        assert not any("image/png" in o.get("data", {}) for o in cell.outputs)


# -- without a kernel: the parts that need none --------------------------------------------------
_COUNTER = """\
import ipywidgets as widgets
from traitlets import Int, Unicode

class Counter(widgets.DOMWidget):  # a custom widget: its frontend (and registration) are elsewhere
    _model_name = Unicode("CounterModel").tag(sync=True)
    _model_module = Unicode("counter-widget").tag(sync=True)
    _view_name = Unicode("CounterView").tag(sync=True)
    _view_module = Unicode("counter-widget").tag(sync=True)
    count = Int(0).tag(sync=True)

w = Counter()
display(w)
w.count = 5
del w
"""


def test_a_widget_that_cannot_be_revived_shows_the_text_of_its_final_state(shell) -> None:
    first = shell.run(f"%%cache\n{_COUNTER}")
    assert shell.status == "stored"
    (shown,) = [e for e in first.events if e[0] == "display"]
    assert shown[1]["text/plain"] == "Counter()" and VIEW in shown[1]
    shell.restart()
    hit = shell.run(f"%%cache\n{_COUNTER}")
    assert shell.status == "hit"
    (shown,) = [e for e in hit.events if e[0] == "display"]
    assert shown[1] == {"text/plain": "Counter(count=5)"}  # the final state, never the initial one


def test_a_widget_the_cell_closed_shows_nothing_on_a_hit(shell) -> None:
    cell = "%%cache\nimport ipywidgets as widgets\nw = widgets.IntSlider(4)\ndisplay(w)\nw.close()\ndel w\nprint('done')\n"
    shell.run(cell)
    shell.restart()
    hit = shell.run(cell)
    assert shell.status == "hit"
    assert hit.events == [("stdout", "done\n")]
