"""What leaves the store: map data, vector tiles, exports, OGC views."""
