"""The evidence format: age-encrypted segments, signed hash chains (manifest, device
journal), encrypted metadata, recovery after a power cut and the verifier."""
