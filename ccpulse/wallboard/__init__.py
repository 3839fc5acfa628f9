"""The live wallboard: a small read-only web server over the KPIs in Redis.

``server`` serves the page and its Server-Sent Events stream, ``watcher`` follows Redis
(pub/sub on ``…:updates`` plus a one-second poll of ``…:meta``), ``board`` reads the tiles
a page shows, and ``colors`` judges each value green, amber or red. See docs/wallboard.md.
"""
