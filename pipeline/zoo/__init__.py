"""The autoencoder zoo: the variants (registry), how each is scored, and the report that compares them."""
