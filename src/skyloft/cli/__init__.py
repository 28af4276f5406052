"""The `skyloft` command."""
