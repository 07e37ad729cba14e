"""Field work: inspections with versioned checklists, the hazard rectification loop (隐患整改闭环)
and campaigns (专项整治). See each module's docstring."""
