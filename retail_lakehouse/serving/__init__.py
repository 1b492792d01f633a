"""Serving gold: the sync to a SQL database (`sync`, `assets`) and the analysts' SQL shell (`shell`, `make sql`)."""
