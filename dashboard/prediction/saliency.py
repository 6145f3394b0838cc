"""Why an image got its answer: occlusion saliency (Zeiler & Fergus). The image is covered one square at a time
with its own mean colour; how much the answer's score drops says how much that square mattered. Forward calls only
(one batched call of every occluded copy), so it works on either runtime, LiteRT included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dashboard.contract import Batch, ServableModel

GRID = 8  # squares per side: 64 occluded copies, one model call


@dataclass(frozen=True)
class Saliency:
    """How much each square mattered for one output: the drop of its score when covered (rows x cols, >0 helped)."""

    drops: np.ndarray  # (grid rows, grid cols)
    output: int  # which output's score (the predicted class; 0 for one-value outputs)
    copies: int  # occluded copies predicted (forward passes)
    seconds: float

    def heat(self, height: int, width: int) -> np.ndarray:
        """The drops stretched to the image's size, scaled to 0..1 (only squares that helped the answer)."""
        helped = np.clip(self.drops, 0, None)
        top = float(helped.max())
        scaled = helped / top if top > 0 else helped
        rows = (np.arange(height) * scaled.shape[0] // height).clip(0, scaled.shape[0] - 1)
        cols = (np.arange(width) * scaled.shape[1] // width).clip(0, scaled.shape[1] - 1)
        return scaled[rows][:, cols]


def occlusion(model: ServableModel, inputs: Batch, feature: str, output: int, grid: int = GRID) -> Saliency:
    """Occlusion saliency of one validated row (inputs of one row, as validation gives them) for the image input
    `feature` (its key in a dict batch; any name for a model of one image input)."""
    started = time.perf_counter()
    image = inputs[feature] if isinstance(inputs, dict) else inputs
    pixels = np.asarray(image, dtype=np.float32)[0]  # (H, W, C)
    height, width = pixels.shape[:2]
    rows, cols = min(grid, height), min(grid, width)
    fill = pixels.reshape(-1, pixels.shape[-1]).mean(axis=0)
    copies = np.repeat(pixels[None], rows * cols + 1, axis=0)  # the last copy stays whole: the score to compare with
    for r in range(rows):
        for c in range(cols):
            top, bottom = r * height // rows, (r + 1) * height // rows
            left, right = c * width // cols, (c + 1) * width // cols
            copies[r * cols + c, top:bottom, left:right] = fill
    if isinstance(inputs, dict):
        batch: Batch = {
            name: copies if name == feature else np.repeat(np.asarray(column)[:1], len(copies), axis=0)
            for name, column in inputs.items()
        }
    else:
        batch = copies
    scores = np.asarray(model.call(batch), dtype=np.float64).reshape(len(copies), -1)[:, output]
    drops = (scores[-1] - scores[:-1]).reshape(rows, cols)
    return Saliency(drops=drops, output=output, copies=len(copies), seconds=time.perf_counter() - started)


def overlay(pixels: np.ndarray, saliency: Saliency, scale: str) -> np.ndarray:
    """The model's view of the image (uint8 RGB) with the squares that helped the answer tinted red."""
    shown = np.asarray(pixels, dtype=np.float32)
    if scale == "0..1":
        shown = shown * 255
    elif scale == "-1..1":
        shown = (shown + 1) * 127.5
    shown = np.clip(shown, 0, 255)
    if shown.shape[-1] == 1:
        shown = np.repeat(shown, 3, axis=-1)
    heat = saliency.heat(*shown.shape[:2])[:, :, None]
    red = np.array([230, 40, 40], dtype=np.float32)
    return (shown * (1 - 0.6 * heat) + red * 0.6 * heat).astype(np.uint8)
