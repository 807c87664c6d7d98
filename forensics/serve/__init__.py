"""`forensics serve`: a local web app over the scan pipeline, for analysts who work in a browser.

One module per job: `config` (the options), `db` (the case database, SQLite in WAL mode), `store` (evidence,
content-addressed and read-only), `uploads` (what an upload must pass before it is stored), `worker` (the scan
worker processes and the queue they share through the database), `progress` (how far a scan is, from its
journal), `auth` (the token, the Host and Origin checks), `export` (a case as a zip), `app` (the routes).
Nothing here leaves the machine: every page asset is served from `static/`.
"""
