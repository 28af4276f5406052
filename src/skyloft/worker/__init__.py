"""The worker agent: runs containers for the control plane on one machine."""
