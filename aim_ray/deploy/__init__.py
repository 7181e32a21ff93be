"""Deployment artefacts: Serve configs and KubeRay manifests, rendered from the same
application args and recipes the app runs."""
