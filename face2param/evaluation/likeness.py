"""Does the avatar look like the person? Checked by something the fit does not optimise: dlib's face
recognition network on the engine's renders (the fit sees only landmarks, colours and a linear surrogate
of dlib's descriptor), on a folder whose labels.json names the person in each photo.

- same-vs-different-person AUC on renders: the probability that two renders of photos of the same person
  are closer (dlib distance) than two renders of different people (the photos' own AUC is the ceiling);
- nearest-photo identification: for each render, is the nearest real photo (all photos, excluding
  nothing) of the same person? Also without the render's own photo (the harder question: another photo
  of the same person);
- a contact sheet a reviewer can look through: photo crop | render | mean face per row, grouped by
  person (contact_sheet.html + contact_sheet.png in the report folder).
"""
from __future__ import annotations

import html
import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from face2param.evaluation.identity_eval import separation_from_distances
from face2param.evaluation.report import to_jsonable
from face2param.faces.identity import identity_distance

SHEET_HTML, SHEET_PNG = "contact_sheet.html", "contact_sheet.png"


@dataclass
class LikenessRow:
    """One labelled photo and the render of its fit."""

    name: str
    person: str
    photo_embedding: np.ndarray | None
    render_embedding: np.ndarray | None  # None: dlib found no face on the render
    photo_crop: np.ndarray  # (S, S, 3) uint8
    render: np.ndarray  # (S', S', 3) uint8


def render_separation(rows: list[LikenessRow]) -> dict:
    """AUC and distances of same-person vs different-person render pairs, and of the photos (ceiling)."""
    out = {}
    for key, attr in (("renders", "render_embedding"), ("photos", "photo_embedding")):
        usable = [(r.person, getattr(r, attr)) for r in rows if getattr(r, attr) is not None]
        genuine, impostor = [], []
        for (pa, a), (pb, b) in itertools.combinations(usable, 2):
            (genuine if pa == pb else impostor).append(identity_distance(a, b))
        out[key] = to_jsonable(separation_from_distances(genuine, impostor, len({p for p, _ in usable}),
                                                         len(usable)))
    return out


def nearest_photo_identification(rows: list[LikenessRow]) -> dict:
    """For each render, the nearest photo by dlib distance (all photos; and without its own photo)."""
    photos = [r for r in rows if r.photo_embedding is not None]
    per_render, hits, hits_other = {}, [], []
    for row in rows:
        if row.render_embedding is None:
            continue
        distances = sorted((identity_distance(row.render_embedding, p.photo_embedding), p.name, p.person)
                           for p in photos)
        nearest = distances[0]
        others = [d for d in distances if d[1] != row.name]
        hits.append(nearest[2] == row.person)
        entry = {"nearest_photo": nearest[1], "nearest_person": nearest[2], "distance": round(nearest[0], 4),
                 "correct": nearest[2] == row.person}
        if others and any(d[2] == row.person for d in others):  # the person has another photo
            hits_other.append(others[0][2] == row.person)
            entry["nearest_other_photo"], entry["correct_other"] = others[0][1], others[0][2] == row.person
        per_render[row.name] = entry
    return {"rate": float(np.mean(hits)) if hits else float("nan"), "renders": len(hits),
            "rate_excluding_own_photo": float(np.mean(hits_other)) if hits_other else float("nan"),
            "renders_excluding_own_photo": len(hits_other), "per_render": per_render}


def likeness_section(rows: list[LikenessRow], mean_render: np.ndarray, folder: Path, method: str) -> dict:
    """The summary for report.json; writes the contact sheet (HTML + PNG) into `folder`."""
    separation = render_separation(rows)
    nearest = nearest_photo_identification(rows)
    write_contact_sheet(rows, mean_render, folder, nearest["per_render"])
    return {"method": method, "people": len({r.person for r in rows}), "photos": len(rows),
            "renders_without_face": sorted(r.name for r in rows if r.render_embedding is None),
            "render_auc": separation["renders"]["roc_auc"], "photo_auc": separation["photos"]["roc_auc"],
            "nearest_photo_rate": nearest["rate"],
            "nearest_other_photo_rate": nearest["rate_excluding_own_photo"],
            "separation": separation, "nearest_photo": nearest,
            "contact_sheet": {"html": SHEET_HTML, "png": SHEET_PNG}}


def _tile(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_AREA)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.rectangle(out, (0, out.shape[0] - 14), (out.shape[1], out.shape[0]), (255, 255, 255), -1)
    cv2.putText(out, text, (2, out.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def write_contact_sheet(rows: list[LikenessRow], mean_render: np.ndarray, folder: Path,
                        nearest: dict, tile: int = 128, columns: int = 4) -> None:
    """contact_sheet.png: photo | render | mean face triplets, `columns` a row, sorted by person; and
    contact_sheet.html with the same rows, captions and the nearest photo of each render."""
    folder = Path(folder)
    images = folder / "contact_sheet"
    images.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r.person, r.name))
    mean_tile = _tile(mean_render, tile)
    Image.fromarray(mean_tile).save(images / "mean.png")
    cells, lines = [], []
    for row in rows:
        found = nearest.get(row.name, {})
        mark = "no face" if row.render_embedding is None else ("ok" if found.get("correct") else "x")
        photo, render = _tile(row.photo_crop, tile), _tile(row.render, tile)
        cells.append(np.hstack([_caption(photo, f"{row.person} {row.name}"), _caption(render, f"render {mark}"),
                                mean_tile]))
        stem = Path(row.name).stem
        Image.fromarray(photo).save(images / f"{stem}_photo.png")
        Image.fromarray(render).save(images / f"{stem}_render.png")
        esc = html.escape
        lines.append(f"<tr><td>{esc(row.person)}</td><td><img src='contact_sheet/{esc(stem)}_photo.png'>"
                     f"<br>{esc(row.name)}</td><td><img src='contact_sheet/{esc(stem)}_render.png'></td>"
                     f"<td><img src='contact_sheet/mean.png'></td><td>{esc(found.get('nearest_photo', '-'))} "
                     f"({esc(found.get('nearest_person', '-'))}, d {found.get('distance', float('nan')):.3f})"
                     f"</td></tr>")
    blank = np.full((tile, 3 * tile, 3), 255, np.uint8)
    cells += [blank] * (-len(cells) % columns)
    grid = [np.hstack(cells[i:i + columns]) for i in range(0, len(cells), columns)]
    sheet = np.vstack([np.pad(g, ((2, 2), (0, 0), (0, 0)), constant_values=255) for g in grid])
    Image.fromarray(sheet).save(folder / SHEET_PNG)
    (folder / SHEET_HTML).write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Photo likeness contact sheet</title>"
        "<style>body{font-family:sans-serif} td{padding:4px;vertical-align:top} img{width:160px}</style>"
        "</head><body><h1>Photo | render | mean face</h1><p>Nearest photo: the real photo closest to the "
        "render by dlib distance (the same person is a hit).</p><table><tr><th>person</th><th>photo</th>"
        "<th>render</th><th>mean face</th><th>nearest photo</th></tr>" + "".join(lines) + "</table></body></html>\n")


class LikenessCollector:
    """Gathers the rows of one method while `avatar eval photo` fits a labelled folder."""

    def __init__(self, labels: dict[str, dict], method: str, crop_scale: float, tile: int):
        self.labels, self.method, self.crop_scale, self.tile = labels, method, crop_scale, tile
        self.rows: list[LikenessRow] = []

    def add(self, name: str, pixels: np.ndarray, analysis, renders: dict, embeddings: dict) -> None:
        from face2param.evaluation.report import crop_around

        person = self.labels.get(name, {}).get("person")
        if person is None or renders.get(self.method) is None:
            return
        crop, _ = crop_around(pixels, analysis.box.as_ltrb(), self.crop_scale, self.tile)
        self.rows.append(LikenessRow(name, str(person), analysis.embedding, embeddings.get(self.method), crop,
                                     renders[self.method]))

    def section(self, engine, folder: Path, render_size: int) -> dict:
        from face2param.methods.fit import as_numpy_image

        mean = as_numpy_image(engine.render(engine.spec.defaults(), render_size))
        return likeness_section(self.rows, mean, folder, self.method)


def likeness_collector(photos_dir: str | Path, method: str, crop_scale: float, tile: int = 256
                       ) -> LikenessCollector | None:
    """A collector when the folder's labels.json names the person of at least two photos of someone."""
    from face2param.evaluation.attribute_eval import LABELS, read_labels

    if not (Path(photos_dir) / LABELS).is_file():
        return None
    labels = read_labels(photos_dir)
    people = [v.get("person") for v in labels.values() if isinstance(v, dict) and v.get("person")]
    if len(set(people)) < 2 or len(people) == len(set(people)):
        return None
    return LikenessCollector(labels, method, crop_scale, tile)


def plausibility_summary(rows: list[dict], limit: float = 0.10) -> dict:
    """Over fits (face_prior.plausibility rows): the worst fraction of sliders at a bound, how many fits
    have more than `limit` of them there, the worst edge ratio, inverted-triangle count, and the fits whose
    mouth/eye interior shows through the skin (more pixels than the mesh check allows) or that fail it."""
    rows = [r for r in rows if r]
    if not rows:
        return {}
    bound = [r["at_bound_fraction"] for r in rows]
    edges = [r["mesh"]["max_edge_ratio"] for r in rows if "mesh" in r]
    inverted = [r["mesh"]["inverted_triangles"] for r in rows if "mesh" in r]
    interior = [r["mesh"].get("interior_pixels", 0) for r in rows if "mesh" in r]
    return {"fits": len(rows), "at_bound_mean": float(np.mean(bound)), "at_bound_max": float(np.max(bound)),
            f"fits_over_{limit:.0%}_at_bound": int(sum(b > limit for b in bound)),
            "max_pair_difference_max": float(max(r["max_pair_difference"] for r in rows)),
            "max_edge_ratio_max": float(max(edges)) if edges else float("nan"),
            "fits_with_inverted_triangles": int(sum(i > 0 for i in inverted)),
            "inverted_triangles_max": int(max(inverted)) if inverted else 0,
            "interior_pixels_max": int(max(interior)) if interior else 0,
            "fits_failing_mesh_check": int(sum(not r["mesh"]["ok"] for r in rows if "mesh" in r))}
