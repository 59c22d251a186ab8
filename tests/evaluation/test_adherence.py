"""The prompt-adherence judge on scenes whose truth is known: real scenes pass (the judge's ceiling), the same
images under other scenes' captions fail, a blank canvas has nothing in place, and a small object drawn where a
large one was asked fails on size alone."""

import dataclasses

import torch

from aigc.data.captions import CaptionDataConfig, load_captioned
from aigc.evaluation.adherence import adherence, size_extents
from aigc.evaluation.features import load_extractor


def test_real_scenes_adhere_and_mismatched_captions_do_not():
    data = load_captioned(CaptionDataConfig(name="scenes:digits"), "test", 120)
    scenes, extractor = list(data.scenes), load_extractor("digits")
    extents = size_extents(data.images, scenes)
    assert extents["large"] > extents["small"]
    real = adherence(data.images, scenes, extractor, extents)
    assert real["all"] > 0.9 and real["place"] > 0.95 and real["images"] == 120
    shuffled = adherence(data.images.roll(1, 0), scenes, extractor, extents)
    assert shuffled["all"] < 0.2 and shuffled["class"] < 0.4
    blank = adherence(torch.zeros_like(data.images), scenes, extractor, extents)
    assert blank["place"] == 0 and blank["all"] == 0


def test_an_object_of_the_wrong_size_fails_on_size_alone():
    data = load_captioned(CaptionDataConfig(name="scenes:digits", min_objects=1, max_objects=1), "test", 60)
    scenes, extractor = list(data.scenes), load_extractor("digits")
    extents = size_extents(data.images, scenes)
    flipped = [
        dataclasses.replace(
            s,
            objects=(dataclasses.replace(s.objects[0], size={"small": "large", "large": "small"}[s.objects[0].size]),),
        )
        for s in scenes
    ]
    judged = adherence(data.images, flipped, extractor, extents)
    assert judged["size"] < 0.2 and judged["place"] > 0.9
