"""Agent configurations of the ALOHA assembly tasks."""
