"""Field work: household visits, patrols and their coverage."""
