"""curfew.k8s."""
