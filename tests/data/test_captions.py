"""Captioned images: the compositional scenes (deterministic, boxes where the captions say, held-out
combinations kept out of training) and caption folders in both layouts, with one-line errors for bad ones."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from aigc.core.errors import UserError
from aigc.data.captions import CaptionDataConfig, load_captioned
from aigc.data.scenes import PLACES, SceneLayout, holds_held_out, make_scenes


def sprites(n: int = 40, side: int = 12):
    """Images of a filled square per class (so each object's pixels are its box), labels 0..9."""
    images = torch.full((n, 1, side, side), 200, dtype=torch.uint8)
    return images, torch.arange(n) % 10


def test_scenes_are_a_function_of_split_seed_and_index():
    images, labels = sprites()
    first = make_scenes(images, labels, "digits", "train", 12)
    again = make_scenes(images, labels, "digits", "train", 12)
    assert torch.equal(first.images, again.images) and first.scenes == again.scenes
    other = make_scenes(images, labels, "digits", "train", 12, seed=1)
    assert other.scenes != first.scenes
    assert make_scenes(images, labels, "digits", "test", 12).scenes != first.scenes


def test_every_object_is_painted_inside_its_box_in_the_place_its_caption_names():
    images, labels = sprites()
    layout = SceneLayout(canvas=48)
    scenes = make_scenes(images, labels, "digits", "train", 40, layout)
    for image, scene in zip(scenes.images, scenes.scenes, strict=True):
        inside = torch.zeros(48, 48, dtype=torch.bool)
        for o in scene.objects:
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
            assert (image[0, y0:y1, x0:x1] == 200).all()  # a filled sprite fills its box
            inside[y0:y1, x0:x1] = True
            row, column = int((y0 + y1) / 2 // 16), int((x0 + x1) / 2 // 16)
            assert PLACES[row * 3 + column] == PLACES[o.place]  # the box's centre lies in the named cell
            assert f"a {o.size} {o.word} " in scene.captions[0]
            assert scene.class_list.split()[o.place] == f"{o.word}/{o.size[0]}"  # the fixed-order list's slot
        assert scene.class_list.split().count("-") == len(PLACES) - len(scene.objects)
        assert (image[0][~inside] == 0).all()
        assert len(scene.captions) == [1, 1, 2, 6][len(scene.objects)]  # every order of the objects


def test_held_out_combinations_never_appear_in_training_and_always_in_the_held_out_split():
    images, labels = sprites()
    train = make_scenes(images, labels, "digits", "train", 300)
    held = make_scenes(images, labels, "digits", "heldout", 30)
    assert not any(holds_held_out(s.objects) for s in train.scenes)
    assert all(holds_held_out(s.objects) and len(s.objects) >= 2 for s in held.scenes)


def test_the_built_in_scenes_paint_digits_with_their_words():
    data = load_captioned(CaptionDataConfig(scenes=8, image_size=32))
    assert data.images.shape == (8, 1, 32, 32) and data.images.dtype == torch.uint8
    assert all(caption.startswith("a ") for row in data.captions for caption in row)
    assert len(data.scenes) == 8


def write_image(path, value: int = 128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 30, 3), value, np.uint8)).save(path)


def test_a_caption_folder_reads_metadata_jsonl_or_sidecar_files_with_several_captions(tmp_path):
    meta = tmp_path / "meta"
    write_image(meta / "a.png")
    write_image(meta / "sub" / "b.png", 30)
    rows = [{"file_name": "a.png", "text": "a red door"}, {"file_name": "sub/b.png", "text": ["a cat", "a dark cat"]},
            {"file_name": "a.png", "text": "a door, red"}]  # fmt: skip
    (meta / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = load_captioned(CaptionDataConfig(name=f"captions:{meta}", image_size=24))
    assert data.images.shape == (2, 3, 24, 24)
    assert data.captions == [("a red door", "a door, red"), ("a cat", "a dark cat")]
    side = tmp_path / "side"
    write_image(side / "x.jpg")
    (side / "x.txt").write_text("first caption\n\nsecond caption\n")
    assert load_captioned(CaptionDataConfig(name=f"captions:{side}")).captions == [("first caption", "second caption")]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: (d / "metadata.jsonl").write_text("{not json\n"), "line 1: not JSON"),
        (lambda d: (d / "metadata.jsonl").write_text('{"file_name": "a.png", "text": ""}\n'), '"text" must be'),
        (lambda d: (d / "metadata.jsonl").write_text('{"file_name": "zz.png", "text": "x"}\n'), "no image"),
        (lambda d: None, "a.png has no caption: write a.txt beside it"),
        (lambda d: (d / "a.txt").write_text("\n"), "a.txt is empty"),
    ],
)
def test_a_bad_caption_folder_is_one_line_naming_what_to_fix(tmp_path, setup, message):
    write_image(tmp_path / "a.png")
    setup(tmp_path)
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as error:
        load_captioned(CaptionDataConfig(name=f"captions:{tmp_path}"))
    assert "\n" not in str(error.value)


def test_unknown_sources_and_splits_are_refused():
    with pytest.raises(UserError, match="scenes are painted from digits, mnist, fashion-mnist"):
        load_captioned(CaptionDataConfig(name="scenes:cifar10"))
    with pytest.raises(UserError, match="unknown captioned data"):
        load_captioned(CaptionDataConfig(name="pictures"))


def test_scenes_of_one_object_have_no_held_out_combinations():
    config = CaptionDataConfig(min_objects=1, max_objects=1, scenes=4)
    assert all(len(scene.objects) == 1 for scene in load_captioned(config).scenes)
    with pytest.raises(UserError, match="scenes of one object have none"):
        load_captioned(config, "heldout", 2)
