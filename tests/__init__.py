"""Curfew test suite (a package so shared harnesses can be imported by qualified name)."""
