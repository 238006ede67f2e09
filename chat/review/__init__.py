"""Staff review of conversations: the queue, exports and privacy deletion behind the admin."""
