"""Public channels: residents' reports and ratings (public.py, ratings.py) and Open311 GeoReport v2
(open311.py), on top of the one incident intake (gis.incidents.intake)."""
