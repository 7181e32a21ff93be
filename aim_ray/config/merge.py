"""The one deep merge: how overrides (a model entry's, a rendered pin) go over defaults."""

import copy
from typing import Any


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, key by key where both hold a mapping.

    Neither argument is changed; values taken from ``update`` are copied.
    """
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
