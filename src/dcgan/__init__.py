"""DCGAN as a PyTorch Lightning + Hydra research template."""
