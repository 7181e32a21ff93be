"""Recipes: the recipe schema, the catalog on the search path, hardware detection, and
choosing a recipe for a model (no Ray needed for any of it)."""
