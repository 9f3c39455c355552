"""LLM access: the host-side gateway, the litellm client, scripted stand-ins."""
