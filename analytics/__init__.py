"""Analytics: SQL access to the lakehouse and, later, events, KPIs, experiments."""
