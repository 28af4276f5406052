"""The in-container runtime: `python -m skyloft.container`."""
