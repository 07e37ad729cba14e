"""Analysis of incidents beyond counting: statistically significant hot spots (Getis-Ord Gi*),
emerging hot spots across weeks, and repeat locations (``hotspots``, ``emerging``, ``repeats``)."""
