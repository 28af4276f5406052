"""The control plane: API, state store, scheduler, autoscaler, blobs and logs."""
