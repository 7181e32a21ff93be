"""The import path every serve config names, ``aim_ray.app:build_app``: kept stable here so
that configs outlive the package layout. The application itself is ``aim_ray.serving.app``.
"""

from aim_ray.serving.app import build_app

__all__ = ["build_app"]
