"""The operators' workspace: countersigning, ethics review, exclusions and incidents."""
