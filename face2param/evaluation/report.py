"""Reusable evaluation reports: report.json plus an HTML page of image pairs (input | result).

`write_report` writes into an existing folder (callers wrap it in `jobfolder.atomic_job_folder`
so a failed evaluation leaves nothing half-written). Images go to images/ as PNG; the page
links them relatively, so the folder can be moved or served as it is.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image


@dataclass
class ImagePair:
    title: str
    left: np.ndarray  # (H, W, 3) uint8 RGB
    right: np.ndarray
    left_label: str = "input"
    right_label: str = "result"
    caption: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, numpy arrays/scalars, paths and NaN -> plain JSON values (NaN -> null)."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(folder: str | Path, title: str, summary: dict,
                 pairs: list[ImagePair] = ()) -> dict[str, Path]:
    """report.json, index.html and images/*.png in `folder`; returns their paths."""
    folder = Path(folder)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, pair in enumerate(pairs):
        names = []
        for side, pixels in (("left", pair.left), ("right", pair.right)):
            name = f"pair_{index:03d}_{side}.png"
            Image.fromarray(np.ascontiguousarray(pixels)).save(images / name)
            names.append(f"images/{name}")
        entries.append({"title": pair.title, "left": names[0], "right": names[1],
                        "left_label": pair.left_label, "right_label": pair.right_label,
                        "caption": pair.caption, "metrics": pair.metrics})
    report = {"title": title, "summary": summary, "pairs": entries}
    json_path = folder / "report.json"
    json_path.write_text(json.dumps(to_jsonable(report), indent=2) + "\n")
    html_path = folder / "index.html"
    html_path.write_text(_page(title, to_jsonable(summary), entries))
    return {"json": json_path, "html": html_path, "images": images}


def _page(title: str, summary: dict, entries: list[dict]) -> str:
    esc = html.escape
    rows = []
    for entry in entries:
        metrics = ", ".join(f"{esc(str(k))}: {_fmt(v)}" for k, v in entry["metrics"].items())
        rows.append(
            f"<figure><figcaption><b>{esc(entry['title'])}</b> {esc(entry['caption'])}"
            f"<br><small>{metrics}</small></figcaption>"
            f"<div class=pair><div><img src='{esc(entry['left'])}'>"
            f"<span>{esc(entry['left_label'])}</span></div>"
            f"<div><img src='{esc(entry['right'])}'><span>{esc(entry['right_label'])}</span>"
            f"</div></div></figure>")
    return f"""<!doctype html><html><head><meta charset=utf-8><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} pre{{background:#f4f4f4;padding:1em}}
.pair{{display:flex;gap:8px}} .pair div{{display:flex;flex-direction:column}}
.pair img{{max-width:320px;image-rendering:pixelated}} figure{{margin:1em 0}}</style></head>
<body><h1>{esc(title)}</h1><h2>Summary</h2><pre>{esc(json.dumps(summary, indent=2))}</pre>
<h2>Images</h2>{''.join(rows)}</body></html>
"""


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def draw_points(image: np.ndarray, points: np.ndarray, colour=(0, 255, 0),
                radius: int = 1) -> np.ndarray:
    """A copy of the image with points drawn as dots."""
    out = np.ascontiguousarray(image).copy()
    for x, y in np.asarray(points)[:, :2]:
        cv2.circle(out, (int(round(x)), int(round(y))), radius, colour, -1, lineType=cv2.LINE_AA)
    return out


def crop_around(image: np.ndarray, box_ltrb, scale: float = 1.6, size: int = 256
                ) -> tuple[np.ndarray, np.ndarray]:
    """A square crop around a box resized to `size`, and the (2, 3) affine image -> crop."""
    left, top, right, bottom = box_ltrb
    side = max(right - left, bottom - top) * scale
    s = size / side
    cx, cy = (left + right) / 2, (top + bottom) / 2
    matrix = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
    crop = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size),
                          flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    return crop, matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    points = np.asarray(points)[:, :2]
    return points @ matrix[:, :2].T + matrix[:, 2]
