"""Off-device programs: keys, configuration, vault, verification, extraction."""
