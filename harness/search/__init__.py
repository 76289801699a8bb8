"""The search, torch-free: the engine, its islands and store, the proposers and the run's result."""
