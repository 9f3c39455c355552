"""Docker sandboxes. They know nothing of evolution or the archive."""
