"""The shipped surrogate checkpoint (see README.md in this folder for its model card)."""
