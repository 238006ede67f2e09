"""Shoppers' photos and voice notes: type sniffing, normalisation, storage and how they reach
the model. CPU-bound work runs in a bounded thread pool (chat/media/workers.py)."""
