"""Asset factories: one model spec in, its whole asset family out."""
