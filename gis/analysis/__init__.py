"""Analysis for the command centre and planners: KPIs, callbacks, hot spots."""
