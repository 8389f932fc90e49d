"""A review page: every document, its extracted values, each highlighted in its text.

One self-contained HTML file (inline CSS and script, no network, no external files),
so it can be mailed or opened from a laptop. A value's row links to its highlight in
the source text; overlapping spans are drawn as nested segments. The page checks
itself when it loads: it compares each highlight with the value it should hold and
writes the outcome on `<body data-check=...>` (a headless browser test reads it).
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.docextract.spans import Span, leaves

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;display:flex;color:#1d1d1f}
nav{width:16rem;flex:none;height:100vh;overflow:auto;position:sticky;top:0;
background:#f4f4f6;border-right:1px solid #ddd;padding:.5rem}
nav a{display:block;padding:.15rem .3rem;color:#124;text-decoration:none;
overflow-wrap:anywhere}nav a.err{color:#a00}
main{flex:1;padding:1rem 1.5rem;min-width:0}
section{border-bottom:1px solid #ddd;padding-bottom:1rem;margin-bottom:1rem}
h2{font-size:1.05rem;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top}
td.v{font-family:ui-monospace,monospace;overflow-wrap:anywhere;max-width:40rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa;border:1px solid #eee;
padding:.6rem;max-height:32rem;overflow:auto}
mark{background:#ffe58a;border-radius:2px}
mark.flash{outline:2px solid #e36;background:#ffb3c6}
.error{color:#a00}.note{color:#555;font-size:.9em}.ok{color:#070}
"""

_SCRIPT = """
(function(){
  var errors=[];
  window.addEventListener('error',function(e){errors.push(String(e.message));
    document.body.setAttribute('data-errors',errors.join(' | '));});
  function textOf(id){var out='';
    document.querySelectorAll('mark[data-spans~="'+id+'"]').forEach(function(m){
      out+=m.textContent;});
    return out;}
  var rows=document.querySelectorAll('tr[data-span]'),good=0,bad=[];
  rows.forEach(function(row){var id=row.getAttribute('data-span');
    if(textOf(id)===row.getAttribute('data-text')){good++;}else{bad.push(id);}
    row.addEventListener('click',function(){var m=document.getElementById(id);
      if(!m){return;}m.scrollIntoView({block:'center'});
      document.querySelectorAll('mark[data-spans~="'+id+'"]').forEach(function(x){
        x.classList.add('flash');setTimeout(function(){x.classList.remove('flash');},1200);});
    });});
  document.body.setAttribute('data-check',(bad.length?'bad ':'ok ')+good+'/'+rows.length+
    (bad.length?' '+bad.join(','):''));
  document.body.setAttribute('data-errors',errors.join(' | '));
})();
"""


@dataclass(frozen=True)
class ReviewItem:
    """What the page shows of one document."""

    source: str
    text: str
    value: Any
    spans: dict[str, Span]
    error: str | None = None
    notes: tuple[str, ...] = ()
    grounded: tuple[str, ...] = ()


def render(items: Iterable[ReviewItem], title: str = "edge-agent extraction review") -> str:
    """The page, as one HTML string."""
    docs = list(items)
    nav = []
    body = []
    found = total = 0
    for index, item in enumerate(docs):
        anchor = f"d{index}"
        css = ' class="err"' if item.error else ""
        nav.append(f'<a href="#{anchor}"{css}>{html.escape(item.source)}</a>')
        section, doc_found, doc_total = _document(item, anchor)
        found += doc_found
        total += doc_total
        body.append(section)
    failed = sum(1 for d in docs if d.error)
    summary = (
        f"{len(docs)} documents, {failed} with errors; {found} of {total} values "
        "highlighted in their source"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><nav><strong>Documents</strong>{''.join(nav)}</nav><main>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>{''.join(body)}"
        f"</main><script>{_SCRIPT}</script></body></html>\n"
    )


def _document(item: ReviewItem, anchor: str) -> tuple[str, int, int]:
    head = f'<section id="{anchor}"><h2>{html.escape(item.source)}</h2>'
    if item.error:
        return f'{head}<p class="error">{html.escape(item.error)}</p></section>', 0, 0
    rows = []
    marked: list[tuple[int, int, str]] = []
    for number, (pointer, leaf) in enumerate(leaves(item.value)):
        span = item.spans.get(pointer)
        shown = html.escape(json.dumps(leaf, ensure_ascii=False))
        quoted = " (grounded)" if pointer in item.grounded else ""
        if span is not None and 0 <= span[0] <= span[1] <= len(item.text):
            span_id = f"{anchor}-s{number}"
            marked.append((span[0], span[1], span_id))
            # A string must be highlighted as itself; a number as it is spelled there.
            expected = leaf if isinstance(leaf, str) else item.text[span[0] : span[1]]
            rows.append(
                f'<tr data-span="{span_id}" data-text="{html.escape(expected)}">'
                f'<td>{html.escape(pointer or "/")}</td><td class="v">{shown}</td>'
                f'<td><a href="#{span_id}">{span[0]}&ndash;{span[1]}</a>{quoted}</td></tr>'
            )
        else:
            rows.append(
                f'<tr><td>{html.escape(pointer or "/")}</td><td class="v">{shown}</td>'
                "<td>not in the text</td></tr>"
            )
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in item.notes)
    table = (
        f"<table><tr><th>field</th><th>value</th><th>characters</th></tr>{''.join(rows)}</table>"
    )
    section = f"{head}{table}{notes}<pre>{_highlight(item.text, marked)}</pre></section>"
    return section, len(marked), len(rows)


def _highlight(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with each span wrapped in marks; overlapping spans split into segments,
    each segment's mark naming every span that covers it (the first carries the id)."""
    cuts = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out = []
    opened: set[str] = set()
    for start, end in itertools.pairwise(cuts):
        covering = [sid for s, e, sid in spans if s <= start and end <= e and s < e]
        piece = html.escape(text[start:end])
        if not covering:
            out.append(piece)
            continue
        first = [sid for sid in covering if sid not in opened]
        opened.update(first)
        ident = f' id="{first[0]}"' if first else ""
        extra = "".join(f'<a id="{sid}"></a>' for sid in first[1:])
        out.append(f'{extra}<mark{ident} data-spans="{" ".join(covering)}">{piece}</mark>')
    return "".join(out)
