"""Images for Codex: fetched safely, measured from their header, materialised into a turn."""
