"""Metrics: classification accuracy, FID/IS, face-detection rate (on torchmetrics/OpenCV)."""
