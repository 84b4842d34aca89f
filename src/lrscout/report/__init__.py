"""Presentation: plots, terminal tables and the HTML report."""
