"""Incidents (事件): rules (categories, deadlines), intake, reading back, the closed-loop workflow,
totals and statistics.
"""
