"""The dashboard: searches, lineage, results and the runner fleet as web pages.

Served by `kevolve serve` under /dashboard (the bot's jobs, repos and fleet) and by `kevolve ui`
(one local state file or a folder of them). Pages render on the server, charts as inline SVG,
so the essentials read without JavaScript; a small script polls for live changes.
"""
