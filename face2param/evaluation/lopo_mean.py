"""Leave-one-person-out photo means for `avatar eval photo`: the render-domain identity term
(iterative.identity_render_domain) moves each photo's descriptor by the mean descriptor of real photos, and
the packaged mean was computed on faces-identity itself. Measured on that folder, each person's photos are
fitted with a mean computed without them, so the folder's own identities never leak into their fits."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from avatarclip_core.errors import UserInputError
from face2param.faces.analysis import analyse_face
from face2param.faces.images import load_image

FOLDER = "identity_photo_means"  # in the report folder: one .npz per person (provenance of the run)


def needs_lopo_photo_mean(config, labelled: bool) -> bool:
    """True when the fits use the packaged photo mean and the folder names its people."""
    search = config.iterative
    uses_mean = search.identity_render_domain or search.identity_distinct_weight > 0
    return labelled and uses_mean and search.identity_weight > 0 and not search.identity_photo_mean


def lopo_photo_means(photos: list[Path], labels: dict, config, folder: Path) -> tuple[dict, dict]:
    """Analyse every photo once -> ({photo name: FaceAnalysis}, {photo name: config with the person's
    leave-one-person-out mean}). Photos that fail analysis are left out (the main pass records why)."""
    from face2param.methods.identity_surrogate import photo_mean_descriptor, save_photo_mean

    analyses, people = {}, {}
    for path in photos:
        person = (labels.get(path.name) or {}).get("person")
        try:
            analysis = analyse_face(load_image(path), config.faces)
        except UserInputError:
            continue
        analyses[path.name] = analysis
        if person and analysis.embedding is not None:
            people[path.name] = person
    configs, out = {}, Path(folder) / FOLDER
    for person in sorted(set(people.values())):
        others = [name for name, who in people.items() if who != person]
        mean = photo_mean_descriptor(np.stack([analyses[n].embedding for n in others]), [people[n] for n in others])
        path = out / f"{person}.npz"
        save_photo_mean(path, mean, {"left_out": person, "photos": len(others)})
        person_config = dataclasses.replace(config, iterative=dataclasses.replace(
            config.iterative, identity_photo_mean=str(path)))
        configs.update({name: person_config for name, who in people.items() if who == person})
    return analyses, configs
