"""The GitHub App service put together: the web app (`app`) and the composition root (`assembly`)
that wires the storage, the features, the job worker and the dashboard into it.

It sits above the other bot packages: `kevolve serve` and `kevolve worker` import it, and the
modules at the top of `bot/` never do, so imports inside the bot point one way.
"""
