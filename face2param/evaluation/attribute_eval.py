"""Attribute accuracy on a labelled photo folder (labels.json as in ../shared/data/faces-identity:
photos -> {person, gender, hair long/short/bald, beard none/short/full, glasses yes/no}).

The trained part (the gender discriminant on dlib descriptors) is measured leave-one-person-out: for
each person it is retrained without any photo of that person. Everything else has no parameters
fitted to the folder. Reported per attribute: accuracy and a confusion table (truth -> predicted ->
count), the wrong photos, and the skin check (every photo of the darkest-skinned person, by median
ITA, darker than the median of everyone else's photos).
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatarclip_core.errors import UserInputError
from face2param.faces.attributes import AttributeConfig, estimate_attributes, train_gender

LABELS = "labels.json"


@dataclass
class LabelledPhoto:
    name: str
    labels: dict
    analysis: object  # FaceAnalysis


def read_labels(folder: str | Path) -> dict[str, dict]:
    path = Path(folder) / LABELS
    if not path.is_file():
        raise UserInputError(f"no {LABELS} in {folder}: attribute accuracy needs labelled photos")
    photos = json.loads(path.read_text()).get("photos")
    if not isinstance(photos, dict) or not photos:
        raise UserInputError(f"{path} has no 'photos' object")
    return photos


def analyse_labelled(folder: str | Path, config=None) -> tuple[list[LabelledPhoto], dict[str, str]]:
    from face2param.faces.analysis import FaceAnalysisConfig, analyse_face

    folder = Path(folder)
    out, failed = [], {}
    for name, labels in sorted(read_labels(folder).items()):
        try:
            out.append(LabelledPhoto(name, labels, analyse_face(folder / name, config or FaceAnalysisConfig())))
        except UserInputError as exc:
            failed[name] = str(exc)
    return out, failed


def _truth(labels: dict) -> dict[str, str]:
    """labels.json vocabulary -> the attribute vocabulary (beard/glasses also as yes/no)."""
    out = {}
    if "gender" in labels:
        out["gender"] = labels["gender"]
    if "hair" in labels:
        out["hair_length"] = labels["hair"]
    if "beard" in labels:
        out["beard"] = "yes" if labels["beard"] != "none" else "no"
    if "glasses" in labels:
        out["glasses"] = labels["glasses"]
    return out


def _predicted(attributes) -> dict[str, str]:
    beard = attributes["beard"].value
    moustache = attributes["moustache"].value
    return {"gender": attributes["gender"].value, "hair_length": attributes["hair_length"].value,
            "beard": "yes" if beard not in (None, "none") or moustache not in (None, "none") else "no",
            "glasses": attributes["glasses"].value}


def lopo_gender_models(photos: list[LabelledPhoto]) -> dict[str, dict]:
    """person -> gender discriminant trained on everyone else (photos without a descriptor skipped)."""
    usable = [p for p in photos if p.analysis.embedding is not None and "gender" in p.labels]
    X = np.stack([p.analysis.embedding for p in usable])
    female = np.array([p.labels["gender"] == "female" for p in usable])
    people = np.array([p.labels["person"] for p in usable])
    models = {}
    for person in sorted(set(people.tolist())):
        rest = people != person
        if female[rest].all() or not female[rest].any():  # nothing to learn gender from without this person
            models[person] = {"unavailable": "the other people are all of one gender"}
        else:
            models[person] = train_gender(X[rest], female[rest], people[rest])
    return models


def evaluate_attributes(photos: list[LabelledPhoto], config: AttributeConfig | None = None,
                        skin_reference: dict | None = None) -> dict:
    """Accuracy and confusion per attribute (gender leave-one-person-out), skin check, timing."""
    config = config or AttributeConfig()
    models = lopo_gender_models(photos)
    confusion: dict[str, dict] = defaultdict(lambda: defaultdict(Counter))
    wrong: dict[str, list] = defaultdict(list)
    per_photo, itas, seconds = {}, {}, []
    for photo in photos:
        started = time.perf_counter()
        attrs = estimate_attributes(photo.analysis.appearance, photo.analysis.embedding, config,
                                    skin_reference, models.get(photo.labels.get("person")))
        seconds.append(time.perf_counter() - started)
        truth, predicted = _truth(photo.labels), _predicted(attrs)
        for key, value in truth.items():
            confusion[key][value][str(predicted[key])] += 1
            if predicted[key] != value:
                wrong[key].append(f"{photo.name}: {value} -> {predicted[key]} "
                                  f"({attrs[key if key in attrs.attributes else 'beard'].confidence:.2f})")
        itas[photo.name] = (photo.labels.get("person"), attrs.cues.skin_ita if attrs.cues else float("nan"))
        per_photo[photo.name] = {"truth": truth, "attributes": {k: a.to_json() for k, a in attrs.attributes.items()}}
    accuracy = {k: sum(c[t][t] for t in c) / max(1, sum(sum(r.values()) for r in c.values())) for k, c in confusion.items()}
    return {
        "photos": len(photos),
        "accuracy": {k: round(v, 4) for k, v in accuracy.items()},
        "confusion": {k: {t: dict(r) for t, r in c.items()} for k, c in confusion.items()},
        "wrong": dict(wrong),
        "skin": skin_check(itas),
        "method": {"gender": "linear discriminant on dlib descriptors, leave-one-person-out (retrained without "
                             "each person)", "others": "no parameters fitted to this folder"},
        "seconds_per_photo": round(float(np.mean(seconds)), 4) if seconds else None,
        "per_photo": per_photo,
    }


def skin_check(itas: dict[str, tuple[str, float]]) -> dict:
    """Lower ITA = darker. The darkest person by median ITA; are all their photos below the median of
    all other photos?"""
    by_person = defaultdict(list)
    for name, (person, ita) in itas.items():
        by_person[person].append((name, ita))
    if len(by_person) < 2:
        return {}
    darkest = min(by_person, key=lambda p: np.median([i for _, i in by_person[p]]))
    others = [i for p, rows in by_person.items() if p != darkest for _, i in rows]
    median = float(np.median(others))
    return {"darkest_person": darkest, "darkest_ita": {n: round(i, 2) for n, i in by_person[darkest]},
            "others_median_ita": round(median, 2),
            "all_darker": all(i < median for _, i in by_person[darkest])}


def train_gender_artifact(folder: str | Path, out: str | Path, photos: list[LabelledPhoto] | None = None) -> dict:
    """Train the shipped gender discriminant on every labelled photo of `folder`, with its LOPO accuracy
    in meta.json."""
    from face2param.faces.attributes import save_gender_artifact

    photos = photos if photos is not None else analyse_labelled(folder)[0]
    report = evaluate_attributes(photos)
    usable = [p for p in photos if p.analysis.embedding is not None]
    model = train_gender(np.stack([p.analysis.embedding for p in usable]),
                         np.array([p.labels["gender"] == "female" for p in usable]),
                         np.array([p.labels["person"] for p in usable]))
    meta = {"model": "linear discriminant on dlib's 128-d face descriptor (face_recognition_models "
                     "resnet v1, 0 jitters): direction between the class means of per-person mean descriptors, "
                     "covariance of all photos shrunk 0.5 towards its mean variance; scores scaled to +-1 at the "
                     "class means (> 0 female)",
            "trained_on": f"{Path(folder).name}: {len(usable)} photos of {len({p.labels['person'] for p in usable})} "
                          "people (labels.json)",
            "lopo_gender_accuracy": report["accuracy"].get("gender"),
            "lopo_gender_wrong": report["wrong"].get("gender", []),
            "parameters": 129, "command": "python -m face2param.evaluation.attribute_eval --train DIR"}
    save_gender_artifact(Path(out), model, meta)
    return meta


if __name__ == "__main__":  # python -m face2param.evaluation.attribute_eval --train ../shared/data/faces-identity
    import argparse

    from face2param.faces.attributes import ARTIFACT_DIR

    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--out", default=str(ARTIFACT_DIR))
    args = parser.parse_args()
    print(json.dumps(train_gender_artifact(args.train, args.out), indent=2))


# ---- `avatar eval photo` section --------------------------------------------------------------------

LONG_STYLES = ("long", "long_straight", "long_wavy", "long_curly", "shoulder", "ponytail", "bun", "afro")


def set_by_fit(params) -> dict[str, str]:
    """What a fit's parameters show, in the labels' vocabulary (what a user sees on the avatar)."""
    style = params.discrete.get("hair_style", "")
    return {"gender": "female" if params.continuous.get("gender", 0.5) >= 0.5 else "male",
            "hair_length": "bald" if style == "bald" else "long" if style in LONG_STYLES else "short",
            "beard": "no" if params.discrete.get("beard", "none") == "none" else "yes",
            "glasses": "no" if params.discrete.get("glasses", "none") == "none" else "yes"}


def attribute_section(photos_dir: str | Path, per_photo: dict, methods: tuple[str, ...],
                      engine=None) -> dict | None:
    """For a folder with labels.json: the detector's accuracy (gender leave-one-person-out) and, per method,
    the accuracy of what the fitted avatar shows (`attributes_set` rows of methods_eval; its gender model
    is the shipped one, trained on faces-identity itself: not held out there). None without labels."""
    if not (Path(photos_dir) / LABELS).is_file():
        return None
    photos, failed = analyse_labelled(photos_dir)
    reference = None
    if engine is not None:
        from face2param.methods.attribute_slots import rendered_skin_ita

        reference = rendered_skin_ita(engine)
    detector = evaluate_attributes(photos, skin_reference=reference)
    labels = read_labels(photos_dir)
    in_fit = {}
    for method in methods:
        confusion: dict[str, dict] = defaultdict(lambda: defaultdict(Counter))
        for name, row in per_photo.items():
            shown = row.get("methods", {}).get(method, {}).get("attributes_set")
            if not shown or name not in labels:
                continue
            for key, value in _truth(labels[name]).items():
                confusion[key][value][shown[key]] += 1
        in_fit[method] = {
            "accuracy": {k: round(sum(c[t][t] for t in c) / max(1, sum(sum(r.values()) for r in c.values())), 4)
                         for k, c in confusion.items()},
            "confusion": {k: {t: dict(r) for t, r in c.items()} for k, c in confusion.items()}}
    return {"detector": {k: v for k, v in detector.items() if k != "per_photo"}, "failed": failed,
            "shown_by_fit": in_fit,
            "note": "detector: gender retrained without each person (LOPO); shown_by_fit: the shipped gender "
                    "model (trained on this folder when it is faces-identity)"}
