"""The identity term's photo side: the photo warped into the engine's render frame, so the identity
network sees the photo and the candidate renders framed alike (the paper aligns photos to the rendered
average face with dlib landmarks)."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from face2param.faces.align import umeyama


def photo_crop_like_render(target, model, device) -> torch.Tensor:
    """(1, 3, S, S) in [0, 1], S = model.size: the similarity taking the photo's 68 points onto the
    average face's landmarks in the render."""
    spec = model.spec
    mean = spec.defaults().continuous_vector(spec, device)[None]
    with torch.no_grad():
        template = model.landmarks(mean)["ibug68"][0].cpu().numpy()
    transform = umeyama(target.landmarks_68[:, :2], template)
    crop = cv2.warpAffine(np.ascontiguousarray(target.image), transform.matrix()[:2], (model.size, model.size),
                          flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(crop).to(device).permute(2, 0, 1)[None].float() / 255.0
