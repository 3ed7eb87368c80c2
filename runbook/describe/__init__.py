"""The description format: the check base model and its typed fields, the kinds registry, the
system schema, and the loader that reads `systems/*.yml` (overlays, inventories, params, secrets)."""
