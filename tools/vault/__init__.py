"""The chief's vault: offload, verification, retention, consultation and extraction."""
