"""The declarative layer registry, the plan's targets and the synthetic demo city."""
