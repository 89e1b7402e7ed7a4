"""course_utils.configs: configs from defaults, dicts or instances, and checks that name the field and the value."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from course_utils.configs import choose_recipe, make_config, require_multiple, require_positive, require_rate


@dataclass
class Config:
    width: int = 12
    heads: int = 4
    dropout: float = 0.1
    channels: tuple[int, ...] = (8, 16)
    extra: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "width", "heads", "extra", allow_zero=("extra",))
        require_multiple(self, "width", of="heads")
        require_rate(self, "dropout")


def test_make_config_from_defaults_a_dict_or_an_instance_with_overrides():
    assert make_config(Config, None, {}) == Config()
    assert make_config(Config, {"width": 8, "channels": [4, 4]}, {"heads": 2}) == Config(8, 2, channels=(4, 4))
    given = Config(width=16)
    assert make_config(Config, given, {"dropout": 0.0}) == Config(width=16, dropout=0.0)
    assert given.dropout == 0.1  # the instance given is not changed
    with pytest.raises(TypeError, match="config must be a Config or a dict, got int"):
        make_config(Config, 3, {})


def test_validators_name_the_field_and_the_value():
    Config(dropout=0)
    with pytest.raises(ValueError, match=r"Config.width=10 must be a multiple of heads=4"):
        Config(width=10)
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match=r"Config.dropout must be in \[0, 1\)"):
            Config(dropout=bad)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"Config.heads must be an int >= 1"):
            Config(heads=bad)
    with pytest.raises(ValueError, match=r"Config.extra must be an int >= 0, got -1"):
        Config(extra=-1)
    with pytest.raises(ValueError, match=r"Config.width must be an int >= 1"):
        make_config(Config, {"width": 0}, {})  # a card's bad value is refused as it is read


def test_choose_recipe_by_name_or_instance_with_overrides_and_one_line_refusals():
    from course_utils import classifier, gan, vae

    r = choose_recipe(gan.RECIPES, "ci", steps=10)
    assert r.steps == 10 and r.channels == gan.RECIPES["ci"].channels and gan.RECIPES["ci"].steps == 600
    assert choose_recipe(vae.RECIPES, vae.FAST_RECIPE, epochs=4).epochs == 4  # an instance, replaced
    with pytest.raises(ValueError, match=r"^unknown recipe 'huge'; known: ci, cpu, gpu, ship, test$"):
        choose_recipe(gan.RECIPES, "huge")
    with pytest.raises(ValueError, match="GANRecipe has no setting width; known: channels, z_dim"):
        choose_recipe(gan.RECIPES, "ci", width=3)
    with pytest.raises(ValueError, match="exactly one of epochs and steps"):  # the recipe's own check still runs
        choose_recipe(classifier.RECIPES, "ship", steps=5)


def test_every_topic_has_a_recipe_per_profile_and_one_to_ship():
    from course_utils import classifier, gan, gpt_training, hf, vae
    from course_utils.runtime import PROFILES

    for recipes in (classifier.RECIPES, gan.RECIPES, vae.RECIPES, gpt_training.RECIPES, hf.RECIPES):
        assert {*PROFILES, "ship"} <= set(recipes)
        assert all(callable(getattr(r, "describe", None)) for r in recipes.values())
