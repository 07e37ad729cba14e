"""Worker and grid assessment (考核): yearly versioned schemes of weighted indicators (scheme),
the indicators' raw values (indicators), who is assessed (subjects), scores and ranks (scoring)
and audited manual adjustments (adjustments)."""
