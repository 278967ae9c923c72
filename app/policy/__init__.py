"""What a turn may do and see: the run policy, permission profiles, workspaces, layout checks, efforts."""
