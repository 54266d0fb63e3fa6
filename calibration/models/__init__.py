"""Small models the project builds itself, so calibration and serving can be shown and tested offline."""
