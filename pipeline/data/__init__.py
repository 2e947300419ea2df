"""Data: sources (MNIST), the prepared-array format, input corruption."""
