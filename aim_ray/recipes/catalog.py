"""The recipe catalog: where recipes are found, in which order, and loading them.

The search order is AIM's: custom directories (``AIM_RAY_RECIPES_PATH``), then the shipped
model-specific recipes, then the shipped general fallbacks; a custom file with the id of a
shipped one replaces it. The shipped recipes are the ``recipes/`` directory at the top of the
source tree, found relative to this package (source checkouts and ``pip install -e .``), or
``aim_ray/_recipes`` inside an installed package when the build copies it there.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from aim_ray.errors import validation_problems
from aim_ray.recipes.schema import Recipe, RecipeError, Tier

RECIPES_PATH_ENV = "AIM_RAY_RECIPES_PATH"
_LOADER_KEYS = ("id", "tier", "path")


class Catalog(BaseModel):
    """Every recipe on the search path, in search order, with the files custom ones shadow."""

    recipes: list[Recipe]
    shadowed: dict[str, str] = Field(
        default_factory=dict, description="Recipe id → the later file it overrode."
    )

    def get(self, recipe_id: str) -> Recipe:
        for recipe in self.recipes:
            if recipe.id == recipe_id:
                return recipe
        raise RecipeError(f"no recipe {recipe_id!r}: see `aim-ray recipes list`")

    def matching(self, model_id: str | None = None, hardware: str | None = None) -> list[Recipe]:
        """Recipes that can serve ``model_id`` (general ones included) on a ``hardware`` kind."""
        return [
            recipe
            for recipe in self.recipes
            if (model_id is None or recipe.matches_model(model_id))
            and (hardware is None or recipe.hardware == hardware)
        ]

    def count(self, tier: Tier) -> int:
        return sum(recipe.tier == tier for recipe in self.recipes)


def packaged_recipes_dir() -> Path:
    """The shipped recipes: ``aim_ray/_recipes`` if installed there, else ``<repo>/recipes``."""
    installed = importlib.resources.files("aim_ray") / "_recipes"
    if installed.is_dir():
        return Path(str(installed))
    source = Path(__file__).resolve().parents[2] / "recipes"
    if source.is_dir():
        return source
    raise RecipeError(
        f"the shipped recipes are missing (looked in {installed} and {source}); "
        f"install aim-ray from a source checkout or set {RECIPES_PATH_ENV}"
    )


def custom_recipe_dirs() -> list[Path]:
    """The custom recipe directories named by ``AIM_RAY_RECIPES_PATH``, in order."""
    value = os.environ.get(RECIPES_PATH_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


def load_catalog(custom_dirs: Sequence[Path] | None = None) -> Catalog:
    """Load the custom (default: from ``AIM_RAY_RECIPES_PATH``), shipped and general recipes.

    A recipe id found twice keeps its first file, so a custom file with the id of a shipped
    one replaces it, as in AIM.
    """
    dirs = custom_recipe_dirs() if custom_dirs is None else list(custom_dirs)
    packaged = packaged_recipes_dir()
    general = packaged / "general"
    sources: list[tuple[Path, Tier, Iterable[Path]]] = [
        (directory, "custom", _yaml_files(_existing(directory))) for directory in dirs
    ]
    model_files = [p for p in _yaml_files(packaged) if general not in p.parents]
    sources += [(packaged, "model", model_files), (packaged, "general", _yaml_files(general))]
    recipes: dict[str, Recipe] = {}
    shadowed: dict[str, str] = {}
    for root, tier, files in sources:
        for path in files:
            recipe = load_recipe_file(path, root=root, tier=tier)
            if recipe.id in recipes:
                shadowed[recipe.id] = str(path)
            else:
                recipes[recipe.id] = recipe
    return Catalog(recipes=list(recipes.values()), shadowed=shadowed)


def load_recipe_file(path: Path, *, root: Path, tier: Tier = "custom") -> Recipe:
    """Load and validate one recipe file; its id is its path under ``root`` minus ``.yaml``."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping")
    reserved = [key for key in _LOADER_KEYS if key in data]
    if reserved:
        raise RecipeError(f"{path}: {', '.join(reserved)} come from the file's place; remove")
    recipe_id = path.relative_to(root).with_suffix("").as_posix()
    try:
        recipe = Recipe.model_validate({**data, "id": recipe_id, "tier": tier, "path": str(path)})
    except ValidationError as exc:
        raise RecipeError(f"{path}: {_describe(exc)}") from exc
    _check_file_name(path, recipe)
    return recipe


def _existing(directory: Path) -> Path:
    if not directory.is_dir():
        raise RecipeError(f"{RECIPES_PATH_ENV} names {directory}, which is not a directory")
    return directory


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.yaml")) if directory.is_dir() else []


def _check_file_name(path: Path, recipe: Recipe) -> None:
    stem = f"{recipe.engine}-{recipe.hardware.lower()}-{recipe.precision}"
    expected = f"{stem}-{recipe.metric}" if recipe.metric else stem
    if path.stem != expected:
        raise RecipeError(f"{path}: its content says it should be named {expected}.yaml")


def _describe(exc: ValidationError) -> str:
    """Pydantic errors as ``where: what`` pairs, e.g. ``profiles.2.engine_args.dtype: ...``
    (profiles are keyed by GPU count, so integers read as keys)."""
    return "; ".join(validation_problems(exc, index_brackets=False))
