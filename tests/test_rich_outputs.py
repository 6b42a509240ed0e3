"""Rich outputs of the plotting and display libraries people use, through real kernels.

One notebook of cells, each showing one library's output under ``%%cache``, runs three times in
fresh kernels: filling the cache, after a restart (every cell must hit), and plain (no nbcache).
For each library:

- the hit shows exactly what the first run showed (byte for byte: outputs are replayed, not
  recomputed);
- the hit shows what a plain run shows, once the ids a library draws at random for each
  rendering (element ids, uuids, object addresses) are blanked: the same outputs, types and
  content, in the same order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conftest import comparable, is_note, run_notebook

CELLS: dict[str, str] = {
    "plotly": (
        "import plotly.express as px\n"
        "fig = px.scatter(x=[1, 2, 3], y=[4, 5, 6], title='plotly')\n"
        "fig\n"
    ),
    "altair": (
        "import altair as alt\nimport pandas as pd\n"
        "chart = alt.Chart(pd.DataFrame({'a': [1, 2, 3], 'b': [3, 1, 2]})).mark_point().encode(x='a', y='b')\n"
        "chart\n"
    ),
    "bokeh": (
        "from bokeh.io import output_notebook\nfrom bokeh.plotting import figure, show\n"
        "output_notebook()\n"
        "plot = figure(width=240, height=160, title='bokeh')\nplot.line([1, 2, 3], [4, 6, 5])\nshow(plot)\n"
    ),
    "styler": (
        "import pandas as pd\n"
        "styled = pd.DataFrame({'a': [1, 5, 3], 'b': [2.5, 0.5, 9.0]}).style.highlight_max().format(precision=1)\n"
        "styled\n"
    ),
    "image": (
        "import io\nimport numpy as np\nfrom PIL import Image as PILImage\nfrom IPython.display import Image, display\n"
        "buf = io.BytesIO()\nPILImage.fromarray((np.arange(64 * 48 * 3) % 251).astype('uint8').reshape(48, 64, 3)).save(buf, 'PNG')\n"
        "display(Image(buf.getvalue()))\nImage(buf.getvalue(), width=32)\n"
    ),
    "audio": (
        "import numpy as np\nfrom IPython.display import Audio\n"
        "tone = np.sin(np.linspace(0, 2 * np.pi * 440, 4000))\nAudio(tone, rate=8000)\n"
    ),
    "video": (
        "from IPython.display import Video\n"
        "# the first bytes of an MP4 file are enough for the player's markup\n"
        "clip = b'\\x00\\x00\\x00\\x18ftypmp42\\x00\\x00\\x00\\x00mp42isom'\n"
        "Video(clip, embed=True, mimetype='video/mp4', width=160)\n"
    ),
    "animation": (
        "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
        "from matplotlib.animation import FuncAnimation\nfrom IPython.display import HTML\n"
        "afig, aax = plt.subplots(figsize=(2, 2))\n(aline,) = aax.plot([0, 1], [0, 0])\n"
        "anim = FuncAnimation(afig, lambda i: aline.set_ydata([0, i]), frames=3)\n"
        "page = anim.to_jshtml()\nplt.close(afig)\nHTML(page)\n"
    ),
}

# What a library draws at random each time it renders: never content.
_VOLATILE = [
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),  # uuid4 (bokeh, plotly)
    re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])"),  # uuid4().hex (altair, matplotlib)
    re.compile(r"\b0x[0-9a-f]{6,}\b"),  # object addresses in reprs (Styler)
    re.compile(r"\bT_[0-9a-f]{5}"),  # pandas Styler's table uuid
]


def _blank(value: Any) -> Any:
    if isinstance(value, str):
        for pattern in _VOLATILE:
            value = pattern.sub("<id>", value)
        return value
    if isinstance(value, dict):
        return {k: _blank(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v) for v in value]
    return value


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("rich")
    env = {"NBCACHE_DIR": str(root / "cache")}
    cached = ["%load_ext nbcache", *(f"%%cache\n{body}" for body in CELLS.values())]
    plain = ["pass", *CELLS.values()]
    return {
        "first": run_notebook(cached, root, env, timeout=300),
        "second": run_notebook(cached, root, env, timeout=300),
        "plain": run_notebook(plain, root, {}, timeout=300),
    }


@pytest.mark.parametrize("library", list(CELLS))
def test_rich_output_replays_identically_after_a_restart(library: str, runs: dict[str, Any]) -> None:
    index = 1 + list(CELLS).index(library)
    first, second, plain = (runs[phase].cells[index] for phase in ("first", "second", "plain"))
    assert [o for o in plain.outputs if o["output_type"] == "error"] == [], "the plain run itself failed"
    notes = [o for o in second.outputs if is_note(o)]
    assert [n.get("metadata", {}).get("nbcache", {}).get("status") for n in notes] == ["hit"], second.outputs
    assert not any(is_note(o) for o in first.outputs), first.outputs
    assert comparable(first.outputs), "the cell showed nothing"
    assert comparable(second.outputs) == comparable(first.outputs)
    assert _blank(comparable(second.outputs)) == _blank(comparable(plain.outputs))


def test_each_library_shows_its_own_format(runs: dict[str, Any]) -> None:
    """The cells above do exercise the formats they are meant to (a test that can fail)."""
    kinds = {
        "plotly": "application/vnd.plotly.v1+json",
        "altair": "text/html",
        "bokeh": "application/vnd.bokehjs_load.v0+json",
        "styler": "text/html",
        "image": "image/png",
        "audio": "text/html",
        "video": "text/html",
        "animation": "text/html",
    }
    for library, mime in kinds.items():
        outputs = runs["plain"].cells[1 + list(CELLS).index(library)].outputs
        assert any(mime in o.get("data", {}) for o in outputs), (library, outputs)
    page = "".join(o["data"]["text/html"] for o in runs["plain"].cells[1 + list(CELLS).index("animation")].outputs if "data" in o)
    assert "animation" in page.lower() and "data:image/png;base64" in page
