"""Prompt adherence of images drawn from scene captions: for every object a caption names, is the right class in
the right place at the right size? The scene generator knows where each object was asked to be, so each is
judged in its own region with the source data set's shipped classifier (evaluation/features.py):

- class: the classifier's top class of the object's box, cropped and resized to the classifier's input;
- place: the centre of the ink in a window around the box (the box grown by a quarter cell each way) lies in the
  named cell of the 3 x 3 grid;
- size: the ink's extent in that window is nearer the typical extent of the named size than of the other (the
  median extent of each size in real scenes of the same source: digits fill less of their box than bags).

An image adheres when every object passes all three. Real scenes score what the judge itself allows (its
ceiling, reported beside the model's)."""

from __future__ import annotations

import torch

from aigc.data.datasets import resize
from aigc.data.scenes import SIZES, Scene
from aigc.evaluation.features import Extractor

INK = 96  # a pixel brighter than this (of 255) is ink


def size_extents(images: torch.Tensor, scenes: list[Scene]) -> dict[str, float]:
    """The median ink extent of each size's objects in real scenes: what `adherence` compares sizes with."""
    cell = images.shape[-1] / 3
    extents: dict[str, list[int]] = {size: [] for size in SIZES}
    for image, scene in zip(images, scenes, strict=True):
        for o in scene.objects:
            extents[o.size].append(ink_place_and_extent(image[0], o.box, cell)[1])
    return {size: float(torch.tensor(values).float().median()) for size, values in extents.items() if values}


def adherence(
    images: torch.Tensor, scenes: list[Scene], extractor: Extractor, extents: dict[str, float]
) -> dict[str, float]:
    """Shares in [0, 1]: of images whose every object passes (`all`), and of objects passing each test; `extents`
    from `size_extents` of real scenes."""
    canvas = images.shape[-1]
    cell = canvas / 3
    crops, labels, place_ok, size_ok, owner = [], [], [], [], []
    for k, (image, scene) in enumerate(zip(images, scenes, strict=True)):
        for o in scene.objects:
            x0, y0, x1, y1 = o.box
            crops.append(resize(image[None, :, y0:y1, x0:x1], extractor.image_size)[0])
            labels.append(o.label)
            owner.append(k)
            place, extent = ink_place_and_extent(image[0], o.box, cell)
            place_ok.append(place == o.place)
            size_ok.append(min(extents, key=lambda size: abs(extent - extents[size])) == o.size)
    _, probs = extractor(torch.stack(crops).expand(-1, extractor.channels, -1, -1).contiguous())
    class_ok = (probs.argmax(1) == torch.tensor(labels)).tolist()
    passed = [all(t) for t in zip(class_ok, place_ok, size_ok, strict=True)]
    every = [True] * len(scenes)
    for k, ok in zip(owner, passed, strict=True):
        every[k] = every[k] and ok
    share = lambda values: sum(values) / max(len(values), 1)  # noqa: E731
    return {"all": share(every), "class": share(class_ok), "place": share(place_ok), "size": share(size_ok),
            "objects": len(passed), "images": len(scenes)}  # fmt: skip


def ink_place_and_extent(image: torch.Tensor, box: tuple[int, int, int, int], cell: float) -> tuple[int, int]:
    """(the cell index of the ink's centre, the ink's extent in pixels) in a window around `box` of an image
    [H, W]; (-1, 0) when the window holds no ink."""
    x0, y0, x1, y1 = box
    grow = round(cell / 4)
    left, top = max(x0 - grow, 0), max(y0 - grow, 0)
    window = image[top : min(y1 + grow, image.shape[0]), left : min(x1 + grow, image.shape[1])]
    ink = window > INK
    if not ink.any():
        return -1, 0
    rows, columns = ink.any(1).nonzero().flatten(), ink.any(0).nonzero().flatten()
    weights = window.float() * ink
    ys, xs = torch.meshgrid(torch.arange(window.shape[0]), torch.arange(window.shape[1]), indexing="ij")
    cy = top + float((weights * ys).sum() / weights.sum())
    cx = left + float((weights * xs).sum() / weights.sum())
    row, column = min(int(cy // cell), 2), min(int(cx // cell), 2)
    extent = int(max(rows[-1] - rows[0], columns[-1] - columns[0])) + 1
    return row * 3 + column, extent
