"""The test harness: one way for each thing the suite does more than once.

- processes.py: start a server process (own process group, log file, startup timeout, clean stop)
- waiting.py: wait_for(condition, timeout, ...)
- graphql.py: the GraphQL client of a Dagster webserver, and the queries the suite shares
- dagster.py: a deployment (code servers, webserver, daemon) on a fresh DAGSTER_HOME
- postgres.py, emulators.py, browser.py: PostgreSQL, the Google Cloud emulators, headless Chromium
- runner.py: run the census graph in-process (run_graph) and read the result
- plugin.py: the fixtures that start processes (all `slow`, conftest.py) and the report hooks
"""
