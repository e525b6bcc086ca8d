"""The comparison page: the same content as Markdown (report.md) and as one self-contained
HTML file (report.html, every figure embedded)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from den.reports.runs import OUT_FIX
from den.utils.files import write_atomic


@dataclass
class Page:
    """A report being written: Markdown lines and HTML parts, kept in step."""

    title: str
    md: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.md = [f"# {self.title}"]

    def paragraph(self, text: str) -> None:
        self.md += ["", text]
        self.html_parts.append(f"<p>{html.escape(text)}</p>")

    def section(
        self,
        title: str,
        head: list[str],
        rows: list[list[str]],
        plots: list[Path],
        run_lines: list[tuple[str, list[str]]],
    ) -> None:
        """A section's table, its figures and the runs behind each row."""
        self.md += ["", f"## {title}", "", markdown_table(head, rows), ""]
        self.md += [f"![{p.stem}]({p.name})" for p in plots]
        self.md += ["", "Runs:", ""]
        self.md += [f"- {lb}: " + ", ".join(f"`{d}`" for d in dirs) for lb, dirs in run_lines]
        self.html_parts.append(_html_section(title, head, rows, plots, run_lines))

    def subsection(
        self, title: str, head: list[str], rows: list[list[str]], plots: list[Path]
    ) -> None:
        """A table under the current section, with its figures."""
        self.md += ["", f"### {title}", "", markdown_table(head, rows), ""]
        self.md += [f"![{p.stem}]({p.name})" for p in plots]
        self.html_parts.append(_html_section(title, head, rows, plots, [], level=3))

    def notes(self, heading: str, items: list[str]) -> None:
        self.md += ["", f"{heading}:", "", *(f"- `{item}`" for item in items)]
        self.html_parts.append(
            f"<h3>{html.escape(heading)}</h3><ul>"
            + "".join(f"<li><code>{html.escape(i)}</code></li>" for i in items)
            + "</ul>"
        )

    def write(self, folder: Path) -> Path:
        """report.md and report.html in ``folder``; returns report.md."""
        report = folder / "report.md"
        write_atomic(report, "\n".join(self.md) + "\n", OUT_FIX)
        write_atomic(folder / "report.html", _html_page(self.title, self.html_parts), OUT_FIX)
        return report


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _html_section(
    title: str,
    head: list[str],
    rows: list[list[str]],
    plots: list[Path],
    run_lines: list[tuple[str, list[str]]],
    level: int = 2,
) -> str:
    table = (
        '<div class="scroll"><table><thead><tr>'
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        + "</tbody></table></div>"
    )
    images = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></figure>'
        for p in plots
    )
    runs = "".join(
        f"<li><b>{html.escape(lb)}</b>: "
        + ", ".join(f"<code>{html.escape(d)}</code>" for d in dirs)
        + "</li>"
        for lb, dirs in run_lines
    )
    details = f"<details><summary>Runs</summary><ul>{runs}</ul></details>" if runs else ""
    return f"<h{level}>{html.escape(title)}</h{level}>{table}{images}{details}"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }
td { white-space: nowrap; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
tbody tr:nth-child(odd) { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; } figure { margin: 1em 0; }
code { font-size: 0.85em; }
"""


def _html_page(title: str, parts: list[str]) -> str:
    """A self-contained page: the style inline and every image as base64 (no other file)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )
