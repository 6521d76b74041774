"""The benchmark runner's parts: config, data, kinds (running a unit), table (results, table, plot)."""
