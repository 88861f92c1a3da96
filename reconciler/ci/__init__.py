"""Continuous integration: the GitHub Action's logic (``action.yml`` runs ``python -m reconciler.ci``)."""
