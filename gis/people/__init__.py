"""People and access: API keys and the principals they stand for (keys); the people who serve the
county's areas, their postings and the organisation units (rules, write, roster, orgunits), the
staff import and export (staffimport, staffstore, staffexport) and the staffing report (staffing)."""
