"""Loss terms (registered through the loss hook) and the composite loss."""
