"""`dgm serve`: the offline lineage explorer (JSON API + static page)."""
