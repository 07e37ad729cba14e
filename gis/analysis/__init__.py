"""Analysis for planners and the command centre."""
