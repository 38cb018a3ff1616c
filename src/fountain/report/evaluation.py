"""The report's "Fine-tuning check" section: what ``fountain evaluate`` wrote into the output
folder (``evaluation.json`` and its loss curve ``evaluation_loss.png``), when it did. Read from
the files only: the report never imports the training stack."""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path
from typing import Any

RESULT_FILE, CURVE_FILE = "evaluation.json", "evaluation_loss.png"


def read_evaluation(folder: str | Path) -> dict[str, Any] | None:
    """``evaluation.json`` of ``folder`` (None when absent or unreadable)."""
    try:
        data = json.loads((Path(folder) / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def evaluation_html(folder: str | Path) -> str:
    """The section's HTML ("" when the folder has no evaluation)."""
    data = read_evaluation(folder)
    if data is None:
        return ""
    options = data.get("options") or {}
    rows = []
    for name, label in (("test", "held-out test split"), ("real", "real conversations (--real-data)")):
        before = (data.get("before") or {}).get(name)
        after = (data.get("after") or {}).get(name)
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        cells = [label, _fmt(before.get("loss")), _fmt(after.get("loss"))]
        cells += [_fmt(before.get("perplexity")), _fmt(after.get("perplexity")), _fmt(after.get("tokens"))]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("measured on", "loss before", "loss after", "ppl before", "ppl after", "tokens")
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    intro = (
        f"<p>{escape(str(data.get('model', '?')))} on {escape(str(data.get('device', '?')))}: "
        f"{escape(str(options.get('steps', '?')))} steps of {escape(str(options.get('batch_size', '?')))}, "
        f"{'LoRA' if options.get('lora') else 'all weights'}, max length {escape(str(options.get('max_length', '?')))}; "
        f"trained on {escape(str(data.get('train_conversations', '?')))} conversations. "
        "Loss is the mean cross-entropy per assistant token.</p>"
    )
    image = ""
    curve = Path(folder) / CURVE_FILE
    if curve.is_file():
        uri = base64.b64encode(curve.read_bytes()).decode("ascii")
        image = f'<figure><img src="data:image/png;base64,{uri}" alt="loss curve"><figcaption>loss curve</figcaption></figure>'
    return f'<h2 id="evaluation">Fine-tuning check</h2>{intro}{table}{image}'
