"""Analysis job: Monte Carlo P&L of the clean positions, one share of the scenarios per node."""
