"""Face-detection rate: the share of images in which OpenCV's Haar cascade finds a face.

A cheap, weight-free sanity check for face generators: the Viola-Jones frontal-face cascade
that ships with OpenCV either finds a face-like arrangement of eyes, nose and mouth or not.

Tight 64-px CelebA crops leave the cascade no margin around the face: run bare it finds
faces in only about half of *real* crops. Padding each image with a replicated border gives
the detector's sliding window room to fit the whole face. Calibration on the course face
data (``course:/work/shared/data/course/face``; 1,000 val and 1,000 train crops; uniform,
Gaussian and blurred noise; 4x4 tile-shuffled and upside-down faces):

===========================================  =====  =====  =====  ========  ====
setting                                      val    train  noise  shuffled  flip
===========================================  =====  =====  =====  ========  ====
bare (scaleFactor 1.1, minNeighbors 5)       45%    --     0%     --        --
border 16, x1, sf 1.05, mn 5, minSize 32 px  94.0%  93.7%  0.0%   1.0%      25%
border 16, x1, sf 1.05, mn 3, minSize 32 px  95.1%  94.8%  0.0%   0.3%      32%
border 16, x2 (upscaled), sf 1.05, mn 3      96%    --     0.5%   --        --
===========================================  =====  =====  =====  ========  ====

The default (second row) keeps real faces above 90% and noise at 0%; ``minNeighbors=5``
rejects more face-like junk (upside-down faces) than 3; upscaling gains little, costs 4x
time and starts firing on noise. The rate depends on these settings, so it is only
meaningful next to the rate on real data with the same settings: always report both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch

from genda.viz.images import to_uint8


@dataclass(frozen=True)
class CascadeParams:
    """Detector settings (calibrated on 64-px face crops; see the module docstring)."""

    border: int = 16  # replicated border added on each side, in pixels of the input image
    upscale: float = 1.0  # resize factor after padding
    scale_factor: float = 1.05  # detectMultiScale pyramid step
    min_neighbors: int = 5  # overlapping detections needed to accept a face
    min_size: float = 0.5  # smallest face, as a fraction of the (unpadded) image side

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_PARAMS = CascadeParams()


@lru_cache(maxsize=1)
def _cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    casc = cv2.CascadeClassifier(path)
    if casc.empty():
        raise RuntimeError(f"OpenCV could not load its Haar cascade {path}")
    return casc


def detect_faces(images: torch.Tensor, params: CascadeParams = DEFAULT_PARAMS) -> torch.Tensor:
    """Boolean ``[N]``: whether a face was found in each image (uint8 or float [-1, 1] ``[N,C,H,W]``)."""
    import cv2

    casc = _cascade()
    x = to_uint8(images).permute(0, 2, 3, 1).numpy()
    found = np.zeros(len(x), dtype=bool)
    for i, im in enumerate(x):
        g = (
            im[..., 0]
            if im.shape[-1] == 1
            else cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)
        )
        side = min(g.shape)
        b = params.border
        if b:
            g = cv2.copyMakeBorder(g, b, b, b, b, cv2.BORDER_REPLICATE)
        if params.upscale != 1:
            g = cv2.resize(
                g, None, fx=params.upscale, fy=params.upscale, interpolation=cv2.INTER_LINEAR
            )
        m = max(1, int(params.min_size * side * params.upscale))
        faces = casc.detectMultiScale(
            g, scaleFactor=params.scale_factor, minNeighbors=params.min_neighbors, minSize=(m, m)
        )
        found[i] = len(faces) > 0
    return torch.from_numpy(found)


def face_detection_rate(images: torch.Tensor, params: CascadeParams = DEFAULT_PARAMS) -> float:
    """Percentage of images in which the cascade finds at least one face."""
    if len(images) == 0:
        raise ValueError("face_detection_rate needs at least one image")
    return round(100 * float(detect_faces(images, params).float().mean()), 2)
