"""Post-processing job: merge the partial P&L, compute VaR and ES, write the report, update the run record."""
