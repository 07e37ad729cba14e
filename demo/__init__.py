"""The demo generator: a synthetic county (Jiashan 嘉善县) built on real outlines and division codes.

It is a product of its own, not boundary planning: it only writes through gis/ and boundaries/.
"""
