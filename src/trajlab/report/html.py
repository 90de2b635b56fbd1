"""A self-contained HTML report: headings, paragraphs, tables and images embedded as data URIs.

One file that opens anywhere (no sibling files to lose), written atomically.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trajlab.core.io import write_text_atomic

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}.meta{color:#777;font-size:.85em}
"""
_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".svg": "image/svg+xml"}


class Report:
    """Build a report section by section, then `write(path)`."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str) -> Report:
        self._parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def paragraph(self, text: str) -> Report:
        self._parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def link(self, text: str, href: str, before: str = "") -> Report:
        """A paragraph `before` followed by a link (a relative href keeps working when the folder moves)."""
        self._parts.append(f'<p>{html.escape(before)}<a href="{html.escape(href, quote=True)}">'
                           f"{html.escape(text)}</a></p>")
        return self

    def key_values(self, values: Mapping[str, Any]) -> Report:
        rows = [[key, value] for key, value in values.items()]
        return self.table(["", "value"], rows)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Report:
        head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
        body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def image(self, path: str | Path, caption: str = "") -> Report:
        source = Path(path)
        mime = _MIME.get(source.suffix.lower(), "application/octet-stream")
        data = base64.b64encode(source.read_bytes()).decode()
        caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img src="data:{mime};base64,{data}" alt="{html.escape(caption)}" '
                           f'style="max-width:100%">{caption_html}</figure>')
        return self

    def render(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        from trajlab import __version__

        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            f"<p class='meta'>trajlab {__version__} · {stamp}</p>{''.join(self._parts)}</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        write_text_atomic(target, self.render())
        return target


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"<td class='num'>{value:.4g}</td>"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"<td class='num'>{value}</td>"
    return f"<td>{html.escape(str(value))}</td>"
