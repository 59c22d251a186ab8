"""Compositional captioned scenes: objects of a labelled image set (digits, MNIST, Fashion-MNIST) placed on a
blank canvas, each caption naming every object's class, size and place ("a small 3 at the top left and a large
7 on the right"). Data that tests whether a text-to-image model follows the words: the generator records every
object's class, box and size, so whether a generated image has the right object in the right place can be
measured.

Scene i of a split is a pure function of (split, seed, i). A *combination* is two objects' (class, place)
together; about a tenth of all combinations are held out: no training scene holds one, and every scene of the
`heldout` split holds at least one, so a model is asked for pairings it never saw (each object in each place
alone it did see).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import torch

from aigc.core.errors import UserError
from aigc.data.datasets import resize

SOURCES = ("digits", "mnist", "fashion-mnist")
SPLITS = ("train", "test", "heldout")
# the canvas as a 3 x 3 grid: an object's place is the cell its centre lies in
PLACES = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
PHRASES = {"left": "on the left", "right": "on the right", "center": "in the center"}  # else "at the ..."
SIZES = {"small": 0.26, "large": 0.42}  # an object's side, as a share of the canvas side
FASHION_WORDS = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot",
)  # fmt: skip
HELD_OUT_PER_MILLE = 100  # share of combinations held out


@dataclass(frozen=True)
class SceneObject:
    label: int  # class index in the source set
    word: str  # the class as captions name it
    place: int  # index into PLACES
    size: str  # a key of SIZES
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in canvas pixels (x1, y1 exclusive)

    @property
    def phrase(self) -> str:
        where = PLACES[self.place]
        return f"a {self.size} {self.word} {PHRASES.get(where, 'at the ' + where)}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    @property
    def captions(self) -> tuple[str, ...]:
        """One caption per order of the objects: the words say what is where, not in which order."""
        return tuple(join([o.phrase for o in order]) for order in itertools.permutations(self.objects))

    @property
    def class_list(self) -> str:
        """The scene without language: for each place in reading order, its object's class and size ("7/l") or
        "-" - what a model is told when the words are taken away (the baseline of the free-text captions)."""
        at = {o.place: f"{o.word}/{o.size[0]}" for o in self.objects}
        return " ".join(at.get(place, "-") for place in range(len(PLACES)))


def join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def class_words(source: str) -> tuple[str, ...]:
    return FASHION_WORDS if source == "fashion-mnist" else tuple(str(d) for d in range(10))


def combination_key(a: SceneObject, b: SceneObject) -> int:
    first, second = sorted((a.label * len(PLACES) + a.place, b.label * len(PLACES) + b.place))
    return first * 10 * len(PLACES) + second


def held_out(a: SceneObject, b: SceneObject) -> bool:
    """Whether the pair of a's and b's (class, place) is a held-out combination (a fixed tenth of all)."""
    return (combination_key(a, b) * 2654435761) % 2**32 % 1000 < HELD_OUT_PER_MILLE  # Knuth's multiplicative hash


def holds_held_out(objects) -> bool:
    return any(held_out(a, b) for a, b in itertools.combinations(objects, 2))


@dataclass(frozen=True)
class SceneLayout:
    """How scenes are drawn: the canvas side and how many objects each holds."""

    canvas: int = 48
    min_objects: int = 1
    max_objects: int = 3

    def check(self) -> None:
        if self.canvas < 24:
            raise UserError(f"scene canvas {self.canvas}: use at least 24 pixels")
        if not 1 <= self.min_objects <= self.max_objects <= 4:
            raise UserError(f"objects {self.min_objects}-{self.max_objects}: use between 1 and 4 objects")


def layout_scene(
    layout: SceneLayout, split: str, words: tuple[str, ...], generator: torch.Generator
) -> Scene:  # fmt: skip
    """A scene's objects (classes, places, sizes, boxes) drawn from `generator`; training scenes hold no
    held-out combination, held-out ones at least one."""
    if split == "heldout" and layout.max_objects < 2:
        raise UserError("held-out combinations pair two objects; scenes of one object have none (--max-objects 2)")
    least = max(layout.min_objects, 2) if split == "heldout" else layout.min_objects
    while True:
        count = int(torch.randint(least, layout.max_objects + 1, (), generator=generator))
        objects = place_objects(layout, count, words, generator)
        if objects is None:
            continue
        if holds_held_out(objects) == (split == "heldout"):
            return Scene(objects)


def place_objects(layout: SceneLayout, count: int, words, generator) -> tuple[SceneObject, ...] | None:
    """`count` objects in distinct places with boxes that do not overlap, or None when this draw collides."""
    cell = layout.canvas / 3
    places = torch.randperm(len(PLACES), generator=generator)[:count].tolist()
    objects = []
    for place in places:
        label = int(torch.randint(len(words), (), generator=generator))
        size = "large" if torch.rand((), generator=generator) < 0.5 else "small"
        side = round(SIZES[size] * layout.canvas)
        jitter = (torch.rand(2, generator=generator) - 0.5) * (cell / 3)
        row, column = divmod(place, 3)
        cx, cy = (column + 0.5) * cell + float(jitter[0]), (row + 0.5) * cell + float(jitter[1])
        x0 = min(max(round(cx - side / 2), 0), layout.canvas - side)
        y0 = min(max(round(cy - side / 2), 0), layout.canvas - side)
        box = (x0, y0, x0 + side, y0 + side)
        if any(overlap(box, other.box) for other in objects):
            return None
        objects.append(SceneObject(label, words[label], place, size, box))
    return tuple(objects)


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def paint(scene: Scene, canvas: int, sprites: dict[tuple[int, str], torch.Tensor], generator) -> torch.Tensor:
    """The scene as uint8 [1, canvas, canvas]: each object a random image of its class at its size (`sprites`
    [n, 1, side, side] by (class, size)) in its box; the brighter pixel wins where strokes meet."""
    image = torch.zeros(1, canvas, canvas, dtype=torch.uint8)
    for o in scene.objects:
        pool = sprites[o.label, o.size]
        x0, y0, x1, y1 = o.box
        patch = pool[int(torch.randint(len(pool), (), generator=generator))]
        image[:, y0:y1, x0:x1] = torch.maximum(image[:, y0:y1, x0:x1], patch)
    return image


@dataclass(frozen=True)
class SceneSet:
    """Scenes with their images uint8 [N, 1, canvas, canvas]."""

    images: torch.Tensor
    scenes: tuple[Scene, ...]
    source: str

    def captions(self, wording: str = "words") -> list[tuple[str, ...]]:
        """Each scene's captions: sentences (`words`), or its fixed-order class list (`list`)."""
        return [scene.captions if wording == "words" else (scene.class_list,) for scene in self.scenes]


def scene_seed(split: str, seed: int, index: int) -> int:
    """The seed of scene `index`, hashed: the first draws of torch's generator correlate across consecutive seeds
    (the classes of scenes i and i + 1 would repeat)."""
    digest = hashlib.blake2b(f"{split}/{seed}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def make_scenes(images: torch.Tensor, labels: torch.Tensor, source: str, split: str, count: int,
                layout: SceneLayout = SceneLayout(), seed: int = 0) -> SceneSet:  # fmt: skip
    """`count` scenes of `split` painted with objects from `images` [M, 1, h, w] of classes `labels` [M]."""
    if split not in SPLITS:
        raise UserError(f"unknown scene split {split!r}; choose one of {', '.join(SPLITS)}")
    layout.check()
    words = class_words(source)
    if len(labels.unique()) < len(words):
        raise UserError(f"{source}: some classes have no images to paint scenes with")
    sides = {size: round(share * layout.canvas) for size, share in SIZES.items()}
    resized = {size: resize(images, side) for size, side in sides.items()}  # each image once per size
    sprites = {(label, size): resized[size][labels == label] for label in range(len(words)) for size in SIZES}
    painted, scenes = [], []
    for i in range(count):
        generator = torch.Generator().manual_seed(scene_seed(split, seed, i))
        scene = layout_scene(layout, split, words, generator)
        scenes.append(scene)
        painted.append(paint(scene, layout.canvas, sprites, generator))
    return SceneSet(torch.stack(painted), tuple(scenes), source)
