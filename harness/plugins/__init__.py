"""Variants and tasks as plugins: the registry that finds them, their code fingerprints and freshness,
the catalogue's order and listing, and the scaffold that writes a new variant (``templates/``).
"""
