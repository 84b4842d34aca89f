"""The building blocks of lrscout's self-contained HTML pages (shared by every report).

Every figure is a PNG embedded as base64, the style sheet is inline, and there is no
script and no external resource (the favicon is an empty data URL), so a page opens
anywhere, offline, and renders in a headless browser with no console errors.

    escape(x)                       HTML-escaped text
    figure(ax, alt, caption)        an <figure> with the axes' figure as a PNG (closed)
    table(header, rows, left=0)     a <table>; rows are (cells, css class)
    page(title, body)               the complete document
    pct(x), loss(x)                 numbers as the tables show them
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

from .._version import __version__
from .plots import _pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1000px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.sub { color: #666; margin-top: 0; }
.rec { background: #f3f8f1; border: 1px solid #b9d7b0; border-radius: 8px; padding: .8rem 1.2rem; }
.rec .lr { font-size: 1.6rem; font-weight: 700; }
.note { background: #fff4e5; border: 1px solid #f0c27b; border-radius: 6px; padding: .5rem 1rem; }
table { border-collapse: collapse; margin: .8rem 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #e4e4e4; padding: .3rem .7rem; text-align: right; }
th { background: #f6f6f6; } td.l, th.l { text-align: left; }
tr.chosen td { background: #fff1dc; font-weight: 600; } tr.bad td { color: #a33; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: .9rem; }
code, pre { background: #f5f5f5; border-radius: 4px; } pre { padding: .6rem; overflow-x: auto; font-size: .85rem; }
footer { margin-top: 3rem; color: #888; font-size: .85rem; }
"""


def escape(x: object) -> str:
    return html.escape(str(x), quote=True)


def png(ax: Axes) -> str:
    """The axes' figure as an ``<img>`` with a base64 PNG; the figure is closed."""
    fig = cast("Figure", ax.figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(ax: Axes, alt: str, caption: str) -> str:
    return f'<figure><img src="{png(ax)}" alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>'


def table(header: Sequence[str], rows: Iterable[tuple[Sequence[str], str]], left: int = 0) -> str:
    """``rows`` are (cells, css class); the first ``left`` columns are left-aligned."""
    th = "".join(f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>" for i, h in enumerate(header))
    body = []
    for cells, cls in rows:
        tds = "".join(f'<td class="l">{escape(c)}</td>' if i < left else f"<td>{escape(c)}</td>" for i, c in enumerate(cells))
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title><style>{_CSS}</style></head>'
        f"<body>{body}<footer>written by lrscout {escape(__version__)}</footer></body></html>\n"
    )


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


__all__ = ["escape", "figure", "loss", "page", "pct", "png", "table"]
