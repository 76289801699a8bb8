"""Problems: loaded from a repo's kevolve config or a KernelBench file, and checked as data."""
