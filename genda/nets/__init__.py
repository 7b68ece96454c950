"""Network architectures only: no losses, no optimisers, no data formats."""
