"""The bottom layer: ids, clocks, Run/Step/Artifact, events, errors, settings and YAML loading."""
