"""Evaluation material made from the test split: realistic product-photo renderings."""
