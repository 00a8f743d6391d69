"""govbase: the national basic information base pipeline."""
