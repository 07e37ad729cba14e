"""Analysis for the command centre and planners: the county's KPIs and callbacks (``kpis``,
``callbacks``), statistically significant hot spots (Getis-Ord Gi*), emerging hot spots across
weeks and repeat locations (``hotspots``, ``emerging``, ``repeats``), calendar periods (``periods``), and
redistricting proposals for planners (``redistrict``, ``proposal``)."""
