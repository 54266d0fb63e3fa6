"""Offline SmoothQuant calibration: activation statistics, smoothing, INT8 export and evaluation."""
