"""Networks of the reference runs and their data loaders (no torchvision)."""
