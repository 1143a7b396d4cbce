"""电子监察: case histories, past states, chain verification and exports, every access recorded."""
